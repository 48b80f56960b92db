// Creating a room, for a member who may (owners: `POST /rooms`). The
// server replies with an owner token for the new room (a token opens only
// its own room), which goes into the keyring like any other; the new
// room's project page opens next, since a room without a project has
// nothing to work on.

import { ApiError, type KeyEntry, addToken, api } from './api'
import { h } from './dom'
import type { CreatedRoom } from './wire'

/** The form; `entry` is the owner token that asks. */
export function newRoomForm(entry: KeyEntry): HTMLElement {
  const id = h('input', { id: 'new-room-id', type: 'text', autocomplete: 'off', spellcheck: false, 'aria-describedby': 'new-room-id-hint' }) as HTMLInputElement
  const name = h('input', { id: 'new-room-name', type: 'text', autocomplete: 'off', maxLength: 200 }) as HTMLInputElement
  const error = h('p', { class: 'field-error', id: 'new-room-error', hidden: true })
  const create = h('button', { type: 'submit', class: 'primary' }, 'Create room')
  const form = h('form', { class: 'new-room-form', noValidate: true, onSubmit: (event: Event) => {
    event.preventDefault()
    void (async () => {
      error.hidden = true
      id.removeAttribute('aria-invalid')
      id.setAttribute('aria-describedby', 'new-room-id-hint')
      create.disabled = true
      try {
        const body: { id: string; name?: string } = { id: id.value.trim() }
        if (name.value.trim()) body.name = name.value.trim()
        const created = await api<CreatedRoom>(entry.token, 'POST', '/rooms', body)
        await addToken(created.token)
        location.hash = `#/project/${encodeURIComponent(created.room.id)}`
      } catch (caught) {
        // Both refusals (an id not of a room's form, a room that exists) are about the id.
        error.textContent = caught instanceof ApiError ? caught.message : String(caught)
        error.hidden = false
        id.setAttribute('aria-invalid', 'true')
        id.setAttribute('aria-describedby', 'new-room-error new-room-id-hint')
        id.focus()
      } finally {
        create.disabled = false
      }
    })()
  } },
    h('div', { class: 'field' }, h('label', { for: 'new-room-id' }, 'Room id'), id,
      h('p', { class: 'muted', id: 'new-room-id-hint' }, 'Letters, digits, - and _; it names the room in addresses.'), error),
    h('div', { class: 'field' }, h('label', { for: 'new-room-name' }, 'Name (optional)'), name),
    create)
  return h('section', { class: 'panel', 'aria-labelledby': 'new-room-title' }, h('h2', { id: 'new-room-title' }, 'Create a room'), form)
}
