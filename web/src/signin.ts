// Sign-in and the room list. A token opens exactly one room, so signing in
// means adding tokens to the session's keyring; each adds its room. An
// invite link (`#/join/{token}`) does the same and is then replaced in the
// address bar and history so the secret does not linger there.

import { ApiError, type KeyEntry, addOperator, addToken, api, isModerator, isOperatorToken, isTeam, keyring, operatorKey, removeRoom } from './api'
import { h, mount } from './dom'
import { dateTime } from './format'
import { type View, topbar } from './layout'
import { newRoomForm } from './newroom'
import type { RoomInfo } from './wire'

/** Pulls a token out of what was pasted: a bare token or an invite link. */
export function tokenFrom(text: string): string {
  const match = /c(?:rt|op)_[0-9a-f]{64}/.exec(text.trim())
  return match ? match[0] : text.trim()
}

export function signinView(message?: string): View {
  const list = h('div', { class: 'room-list' })
  // Owners may create rooms; the first owner token in the keyring asks.
  const owner = keyring().find((entry) => entry.role === 'owner')
  const error = h('p', { class: 'error', role: 'alert', hidden: true })
  const input = h('input', { id: 'token-input', type: 'password', autocomplete: 'off', spellcheck: false, placeholder: 'crt_… or an invite link', 'aria-describedby': 'token-help' })
  const add = h('button', { type: 'submit', class: 'primary' }, 'Add')
  const render = () => renderRooms(list, render)
  const form = h('form', { class: 'signin-form', onSubmit: async (event: Event) => {
    event.preventDefault()
    error.hidden = true
    add.disabled = true
    const submitted = input.value
    try {
      const token = tokenFrom(submitted)
      if (isOperatorToken(token)) {
        await addOperator(token)
        location.hash = '#/server'
        return
      }
      await addToken(token)
      // Keep whatever was typed meanwhile.
      if (input.value === submitted) input.value = ''
      render()
    } catch (caught) {
      error.textContent = describe(caught)
      error.hidden = false
    } finally {
      add.disabled = false
    }
  } },
    h('label', { for: 'token-input' }, 'Token or invite link'),
    h('div', { class: 'row' }, input, add),
    h('p', { id: 'token-help', class: 'muted' }, 'Each token opens one room. Add several to work in several rooms. They are kept only until you close this browser session. A server operator’s token opens the list of every room.'))
  const element = h('div', { class: 'page' },
    topbar(null, 'rooms'),
    h('main', { class: 'narrow' },
      h('h1', null, 'Sign in'),
      message ? h('p', { class: 'notice', role: 'status' }, message) : null,
      form, error,
      operatorKey() ? h('p', null, h('a', { class: 'button', href: '#/server' }, 'Every room on this server (operator)')) : null,
      h('h2', null, 'My rooms'),
      list,
      owner ? newRoomForm(owner) : null))
  render()
  return { element, destroy: () => undefined }
}

function describe(error: unknown): string {
  if (error instanceof ApiError) {
    if (error.status === 401) return `That token does not work: ${error.message}.`
    return error.message
  }
  return String(error)
}

function renderRooms(list: HTMLElement, rerender: () => void): void {
  const entries = keyring()
  if (!entries.length) {
    mount(list, h('p', { class: 'muted' }, 'No rooms yet: add a token above.'))
    return
  }
  mount(list,
    h('ul', { class: 'cards' }, entries.map((entry) => roomCard(entry, rerender))),
    entries.some((entry) => isModerator(entry.role))
      ? h('p', null, h('a', { class: 'button', href: `#/console/${entries.find((entry) => isModerator(entry.role))!.room}` }, 'Open the moderator console'))
      : null,
    h('button', { type: 'button', onClick: () => {
      for (const entry of entries) removeRoom(entry.room)
      rerender()
    } }, 'Forget all tokens'))
}

function roomCard(entry: KeyEntry, rerender: () => void): HTMLElement {
  const live = h('span', { class: 'muted' }, 'checking…')
  api<RoomInfo>(entry.token, 'GET', `/rooms/${entry.room}`)
    .then((room) => (live.textContent = `${room.live.online} online`))
    .catch((error: ApiError) => {
      live.textContent = error.status === 401 ? `token no longer works (${error.code})` : error.message
      live.className = 'error'
    })
  return h('li', { class: 'card room-card', 'data-room': entry.room },
    h('h3', null, h('a', { href: `#/room/${entry.room}` }, entry.room_name), h('small', { class: 'muted' }, ` ${entry.room}`)),
    h('p', null, `${entry.display_name} · `, h('span', { class: `role role-${entry.role}` }, entry.role), ' · ', live),
    entry.token_expires_at ? h('p', { class: 'muted' }, `Token valid until ${dateTime(entry.token_expires_at)}`) : null,
    h('div', { class: 'row' },
      h('a', { class: 'button primary', href: `#/room/${entry.room}` }, 'Open'),
      isTeam(entry.role) ? h('a', { class: 'button', href: `#/review/${entry.room}` }, 'Review') : null,
      isModerator(entry.role) ? h('a', { class: 'button', href: `#/console/${entry.room}` }, 'Console') : null,
      isModerator(entry.role) ? h('a', { class: 'button', href: `#/project/${entry.room}` }, 'Project') : null,
      h('button', { type: 'button', 'aria-label': `Forget the token for ${entry.room_name}`, onClick: () => {
        removeRoom(entry.room)
        rerender()
      } }, 'Forget')))
}
