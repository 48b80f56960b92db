// People, for owners and moderators: invite someone (user, display name,
// role, expiry) and copy their invite link; the members with their roles
// (owners change a role or remove a member); every token of the room with
// revoke. The server's rank rules decide (docs/API.md, "Who may mint a
// token for whom" and the revoke rules): a refusal is shown as it comes.

import { ApiError, type KeyEntry, api, entryFor, isModerator } from './api'
import { field, h, mount, toast } from './dom'
import { dateTime } from './format'
import { type View, refusedView, topbar } from './layout'
import type { Issued, Member, MemberInterests, MemberList, MemberSkills, Role, TokenList } from './wire'

const ROLES: Role[] = ['owner', 'moderator', 'core', 'worker', 'viewer']

export function peopleView(room: string): View {
  const entry = entryFor(room)
  if (!entry || !isModerator(entry.role)) return refusedView(room, entry ?? null, 'people', 'Only owners and moderators manage people.')
  return new PeoplePage(entry)
}

/** The invite link of a token: the page's own address with `#/join/{token}`. */
export function inviteLink(token: string): string {
  return `${location.href.split('#')[0]}#/join/${token}`
}

function message(error: unknown): string {
  return error instanceof ApiError ? error.message : (error as Error).message
}

class PeoplePage implements View {
  readonly element = h('div', { class: 'page' })
  private invited = h('div', { class: 'invited' })
  private members = h('section', { class: 'panel', 'aria-labelledby': 'people-members' })
  private tokens = h('section', { class: 'panel', 'aria-labelledby': 'people-tokens' })
  /** Roles this caller may grant (moderators: below their own rank). */
  private grantable: Role[]

  constructor(private readonly entry: KeyEntry) {
    this.grantable = entry.role === 'owner' ? ROLES : ['core', 'worker', 'viewer']
    mount(this.element, topbar(entry, 'people'),
      h('main', { class: 'narrow people' }, h('h1', null, 'People'), this.inviteForm(), this.members, this.tokens))
    void this.refresh()
  }

  destroy(): void {}

  private async refresh(): Promise<void> {
    await Promise.all([this.loadMembers(), this.loadTokens()])
  }

  private inviteForm(): HTMLElement {
    const user = h('input', { id: 'invite-user', type: 'text', autocomplete: 'off' }) as HTMLInputElement
    const name = h('input', { id: 'invite-name', type: 'text', autocomplete: 'off', maxLength: 64 }) as HTMLInputElement
    const role = h('select', { id: 'invite-role' }, this.grantable.map((option) => h('option', { value: option, selected: option === 'worker' }, option))) as HTMLSelectElement
    const days = h('input', { id: 'invite-days', type: 'number', min: '1', max: '365', step: '1' }) as HTMLInputElement
    const problem = h('p', { class: 'field-error', role: 'alert', hidden: true })
    const form = h('form', { class: 'invite-form' },
      field('invite-user', 'User id', user),
      field('invite-name', 'Display name', name),
      field('invite-role', 'Role', role),
      field('invite-days', 'Expires after (days; empty: never)', days),
      problem,
      h('button', { type: 'submit' }, 'Invite'))
    form.addEventListener('submit', (event) => {
      event.preventDefault()
      void (async () => {
        problem.hidden = true
        const body: Record<string, unknown> = { user: user.value.trim(), role: role.value }
        if (name.value.trim()) body.display_name = name.value.trim()
        if (days.value) body.ttl_seconds = Math.round(Number(days.value) * 86_400)
        try {
          const issued = await api<Issued>(this.entry.token, 'POST', `/rooms/${this.entry.room}/tokens`, body)
          this.showInvite(issued)
          form.reset()
          role.value = 'worker'
          await this.refresh()
        } catch (error) {
          problem.textContent = message(error)
          problem.hidden = false
        }
      })()
    })
    return h('section', { class: 'panel', 'aria-labelledby': 'people-invite' }, h('h2', { id: 'people-invite' }, 'Invite'), form, this.invited)
  }

  private showInvite(issued: Issued): void {
    const link = inviteLink(issued.token)
    const box = h('input', { id: 'invite-link', type: 'text', readOnly: true, value: link }) as HTMLInputElement
    const copy = h('button', { type: 'button' }, 'Copy link')
    copy.addEventListener('click', () => {
      box.select()
      navigator.clipboard?.writeText(link).then(() => toast('Invite link copied.'), () => toast('Select the link and copy it.'))
    })
    mount(this.invited,
      h('p', null, `Invite link for ${issued.info.user} (${issued.info.role}); it is shown once: send it to them privately.`),
      h('label', { for: 'invite-link', class: 'visually-hidden' }, `Invite link for ${issued.info.user}`),
      box, ' ', copy)
    box.focus()
    box.select()
  }

  private async loadMembers(): Promise<void> {
    try {
      const { members } = await api<MemberList>(this.entry.token, 'GET', `/rooms/${this.entry.room}/members`)
      const owner = this.entry.role === 'owner'
      const rows = members.map((member) => {
        const cells: HTMLElement[] = [h('td', null, member.user), h('td', null, member.display_name), h('td', { 'data-role': member.role }, member.role)]
        if (owner) {
          const id = `role-${member.user}`
          const select = h('select', { id }, ROLES.map((option) => h('option', { value: option, selected: option === member.role }, option))) as HTMLSelectElement
          const change = h('button', { type: 'button', class: 'secondary' }, 'Change role')
          change.addEventListener('click', () => void this.act(`Role of ${member.user} set to ${select.value}.`, 'PUT', `/rooms/${this.entry.room}/members/${encodeURIComponent(member.user)}`, { role: select.value }))
          const remove = h('button', { type: 'button', class: 'secondary' }, 'Remove')
          remove.addEventListener('click', () => void this.act(`${member.user} removed.`, 'DELETE', `/rooms/${this.entry.room}/members/${encodeURIComponent(member.user)}`))
          cells.push(h('td', null, h('label', { for: id, class: 'visually-hidden' }, `Role of ${member.user}`), select, ' ', change, ' ', remove))
        }
        cells.push(h('td', null, this.tagsEditor(member, 'skills')), h('td', null, this.tagsEditor(member, 'interests')))
        return h('tr', { 'data-member': member.user }, cells)
      })
      mount(this.members,
        h('h2', { id: 'people-members' }, `Members (${members.length})`),
        h('table', { class: 'table' },
          h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'User'), h('th', { scope: 'col' }, 'Name'), h('th', { scope: 'col' }, 'Role'), owner ? h('th', { scope: 'col' }, 'Change') : null, h('th', { scope: 'col' }, 'Skills'), h('th', { scope: 'col' }, 'Interests'))),
          h('tbody', null, rows)))
    } catch (error) {
      mount(this.members, h('p', { role: 'alert' }, `The members could not be loaded: ${message(error)}`))
    }
  }

  /** A member's skills or interests, comma-separated, saved with its button (the server's rank rules decide). */
  private tagsEditor(member: Member, kind: 'skills' | 'interests'): HTMLElement {
    const id = `${kind}-${member.user}`
    const input = h('input', { id, type: 'text', autocomplete: 'off', placeholder: kind === 'skills' ? 'de, legal' : 'news, sport' }) as HTMLInputElement
    const path = `/rooms/${this.entry.room}/members/${encodeURIComponent(member.user)}/${kind}`
    void api<MemberSkills | MemberInterests>(this.entry.token, 'GET', path)
      .then((tags) => { input.value = ('skills' in tags ? tags.skills : tags.interests).join(', ') })
      .catch(() => { input.placeholder = 'not readable' })
    const save = h('button', { type: 'button', class: 'secondary' }, 'Save')
    save.addEventListener('click', () => {
      const list = input.value.split(',').map((tag) => tag.trim()).filter(Boolean)
      void api<MemberSkills | MemberInterests>(this.entry.token, 'PUT', path, { [kind]: list })
        .then(() => toast(`${kind === 'skills' ? 'Skills' : 'Interests'} of ${member.user} saved.`), (error) => toast(message(error), 'error'))
    })
    return h('div', { class: 'tags-editor' }, h('label', { for: id, class: 'visually-hidden' }, `${kind === 'skills' ? 'Skills' : 'Interests'} of ${member.user}`), input, ' ', save)
  }

  private async loadTokens(): Promise<void> {
    try {
      const { tokens } = await api<TokenList>(this.entry.token, 'GET', `/rooms/${this.entry.room}/tokens`)
      const rows = tokens.map((token) => {
        const revoke = h('button', { type: 'button', class: 'secondary' }, 'Revoke')
        revoke.addEventListener('click', () => void this.act(`Token ${token.id} revoked.`, 'DELETE', `/rooms/${this.entry.room}/tokens/${token.id}`))
        const state = token.revoked_at !== null ? `revoked ${dateTime(token.revoked_at)}` : token.expires_at !== null && token.expires_at < Date.now() ? 'expired' : 'active'
        return h('tr', { 'data-token': token.id, 'data-user': token.user },
          h('td', null, token.user), h('td', null, token.role), h('td', null, dateTime(token.created_at)),
          h('td', null, token.expires_at === null ? 'never' : dateTime(token.expires_at)),
          h('td', { 'data-state': token.revoked_at === null ? 'active' : 'revoked' }, state),
          h('td', null, token.revoked_at === null ? revoke : null))
      })
      mount(this.tokens,
        h('h2', { id: 'people-tokens' }, `Tokens (${tokens.length})`),
        h('table', { class: 'table' },
          h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'User'), h('th', { scope: 'col' }, 'Role'), h('th', { scope: 'col' }, 'Issued'), h('th', { scope: 'col' }, 'Expires'), h('th', { scope: 'col' }, 'State'), h('th', { scope: 'col' }, 'Action'))),
          h('tbody', null, rows)))
    } catch (error) {
      mount(this.tokens, h('p', { role: 'alert' }, `The tokens could not be loaded: ${message(error)}`))
    }
  }

  private async act(done: string, method: string, path: string, body?: unknown): Promise<void> {
    try {
      await api<unknown>(this.entry.token, method, path, body)
      toast(done)
    } catch (error) {
      toast(message(error), 'error')
    }
    await this.refresh()
  }
}
