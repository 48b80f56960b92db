// Who is in the room now: one entry per user (all their tabs together),
// with role, status and whether a moderator muted them. Kept from the live
// channel's hello and presence/member events; other views read it too
// (names for chat, status for the moderator console).

import { h, mount, userColor } from './dom'
import { time } from './format'
import type { LiveClient } from './live'
import type { Hello, MemberMuted, Presence, PresenceLeft } from './wire'

export class PresenceStore {
  readonly people = new Map<string, Presence>()
  private listeners = new Set<() => void>()

  constructor(live: LiveClient) {
    live.on('hello', (hello: Hello) => {
      this.people.clear()
      for (const entry of hello.presence) this.people.set(entry.user, entry)
      this.emit()
    })
    live.on('presence.joined', (entry: Presence) => this.put(entry))
    live.on('presence.updated', (entry: Presence) => this.put(entry))
    live.on('presence.left', ({ user }: PresenceLeft) => {
      this.people.delete(user)
      this.emit()
    })
    live.on('member.muted', ({ user, until }: MemberMuted) => {
      const entry = this.people.get(user)
      if (entry) this.put({ ...entry, muted_until: until })
    })
  }

  private put(entry: Presence): void {
    const previous = this.people.get(entry.user)
    this.people.set(entry.user, { ...entry, muted_until: entry.muted_until !== undefined ? entry.muted_until : (previous?.muted_until ?? null) })
    this.emit()
  }

  private emit(): void {
    for (const listener of this.listeners) listener()
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  name(user: string): string {
    return this.people.get(user)?.display_name ?? user
  }
}

export function isMuted(entry: { muted_until?: number | null } | undefined): boolean {
  return !!entry?.muted_until && entry.muted_until > Date.now()
}

/** The presence list, re-rendered on every change. */
export function presenceList(store: PresenceStore, live: LiveClient, me: string): HTMLElement {
  const list = h('ul', { class: 'presence-list' })
  const status = h('select', { id: 'my-status', onChange: () => {
    live.request('presence.set', { status: status.value }).catch(() => undefined)
  } }, ['online', 'away', 'busy'].map((value) => h('option', { value }, value)))
  const render = () => {
    const people = [...store.people.values()].sort((a, b) => a.display_name.localeCompare(b.display_name))
    mount(list, people.map((person) =>
      h('li', { class: 'person', 'data-user': person.user },
        h('span', { class: `status-dot status-${['online', 'away', 'busy'].includes(person.status) ? person.status : 'other'}`, 'aria-hidden': 'true' }),
        h('span', { class: 'person-name', style: { color: userColor(person.user) } }, person.display_name, person.user === me ? ' (you)' : ''),
        h('span', { class: `role role-${person.role}` }, person.role),
        h('span', { class: 'person-status' }, person.status),
        isMuted(person) ? h('span', { class: 'badge badge-warn', 'data-muted': 'true' }, `muted until ${time(person.muted_until)}`) : null)))
    const mine = store.people.get(me)
    if (mine && ['online', 'away', 'busy'].includes(mine.status)) status.value = mine.status
  }
  store.onChange(render)
  render()
  return h('section', { class: 'panel', 'aria-labelledby': 'presence-title' },
    h('h2', { id: 'presence-title' }, 'People here'),
    list,
    h('div', { class: 'row' }, h('label', { for: 'my-status' }, 'My status '), status))
}
