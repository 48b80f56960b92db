// The room's chat: history paged back with chat.history, live messages,
// edits and deletions, own-message editing, moderator deletion, and the
// reasons a person cannot send (viewer, muted, room locked) shown next to
// the disabled input instead of as a failed request.

import { h, mount, toast, userColor } from './dom'
import { time } from './format'
import type { LiveClient } from './live'
import { LiveError } from './live'
import type { PresenceStore } from './presence'

export interface Message { id: number; user: string; body: string; created_at: number; edited_at: number | null; deleted_at: number | null; deleted_by: string | null }

const PAGE = 50

export class ChatPanel {
  readonly element: HTMLElement
  private messages = new Map<number, Message>()
  private list = h('ol', { class: 'chat-list', 'aria-live': 'polite', 'aria-label': 'Messages' })
  private more = h('button', { type: 'button', class: 'link', onClick: () => this.loadEarlier() }, 'Load earlier messages')
  private input = h('textarea', { id: 'chat-input', rows: 2, maxLength: 4000, placeholder: 'Message the room', title: 'Enter sends, Shift+Enter starts a new line' })
  private send = h('button', { type: 'submit' }, 'Send')
  private blocked = h('p', { class: 'chat-blocked', role: 'status' })
  private editing: number | null = null
  private exhausted = false

  constructor(
    private readonly live: LiveClient,
    private readonly presence: PresenceStore,
    private readonly me: { user: string; moderator: boolean },
    /** Why I cannot send right now, or null. */
    private readonly sendBlock: () => string | null,
  ) {
    this.input.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.shiftKey) {
        event.preventDefault()
        this.submit()
      }
    })
    this.element = h('section', { class: 'panel chat', 'aria-labelledby': 'chat-title' },
      h('h2', { id: 'chat-title' }, 'Chat'),
      this.more,
      this.list,
      this.blocked,
      h('form', { class: 'chat-form', onSubmit: (event: Event) => {
        event.preventDefault()
        this.submit()
      } }, h('label', { for: 'chat-input', class: 'visually-hidden' }, 'Message'), this.input, this.send))
    live.on('hello', () => this.loadLatest())
    for (const event of ['chat.message', 'chat.edited', 'chat.deleted']) live.on(event, (message: Message) => this.put([message]))
    presence.onChange(() => this.render())
    this.refresh()
  }

  /** Re-checks whether I may send (mute, lock). */
  refresh(): void {
    const block = this.sendBlock()
    this.input.disabled = block !== null
    this.send.disabled = block !== null
    this.blocked.textContent = block ?? ''
    this.blocked.hidden = block === null
    this.render()
  }

  private async loadLatest(): Promise<void> {
    try {
      const { messages } = await this.live.request<{ messages: Message[] }>('chat.history', { limit: PAGE })
      this.exhausted = messages.length < PAGE
      this.put(messages, true)
    } catch {
      // The next hello loads it again.
    }
  }

  private async loadEarlier(): Promise<void> {
    const oldest = Math.min(...this.messages.keys())
    if (!Number.isFinite(oldest)) return this.loadLatest()
    try {
      const { messages } = await this.live.request<{ messages: Message[] }>('chat.history', { before: oldest, limit: PAGE })
      this.exhausted = messages.length < PAGE
      this.put(messages, false)
    } catch (error) {
      toast(`Could not load history: ${(error as Error).message}`, 'error')
    }
  }

  private put(messages: Message[], scroll = true): void {
    const atBottom = this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < 40
    for (const message of messages) this.messages.set(message.id, message)
    this.render()
    if (scroll && atBottom) this.list.scrollTop = this.list.scrollHeight
  }

  private async submit(): Promise<void> {
    const body = this.input.value.trim()
    if (!body || this.sendBlock()) return
    this.send.disabled = true
    try {
      await this.live.request('chat.send', { body })
      this.input.value = ''
      this.list.scrollTop = this.list.scrollHeight
    } catch (error) {
      toast(`Not sent: ${(error as LiveError).message}`, 'error')
    } finally {
      this.refresh()
    }
  }

  private render(): void {
    this.more.hidden = this.exhausted
    const sorted = [...this.messages.values()].sort((a, b) => a.id - b.id)
    mount(this.list, sorted.map((message) => this.item(message)))
  }

  private item(message: Message): HTMLElement {
    const mine = message.user === this.me.user
    const deleted = message.deleted_at !== null
    const head = h('div', { class: 'msg-head' },
      h('b', { style: { color: userColor(message.user) } }, this.presence.name(message.user)),
      h('small', null, ` ${time(message.created_at)}${message.edited_at && !deleted ? ' (edited)' : ''}`))
    if (this.editing === message.id && !deleted) {
      const field = h('input', { type: 'text', value: message.body, 'aria-label': 'Edit message', maxLength: 4000 })
      queueMicrotask(() => field.focus())
      return h('li', { class: 'msg', 'data-id': message.id }, head, h('form', { class: 'inline-form', onSubmit: async (event: Event) => {
        event.preventDefault()
        try {
          await this.live.request('chat.edit', { message_id: message.id, body: field.value })
          this.stopEditing(message.id)
        } catch (error) {
          toast(`Not saved: ${(error as Error).message}`, 'error')
        }
      }, onKeydown: (event: KeyboardEvent) => {
        if (event.key === 'Escape') this.stopEditing(message.id)
      } }, field, h('button', { type: 'submit' }, 'Save'), h('button', { type: 'button', onClick: () => this.stopEditing(message.id) }, 'Cancel')))
    }
    const actions = deleted ? null : h('span', { class: 'msg-actions' },
      mine && !this.sendBlock() ? h('button', { type: 'button', class: 'link', 'aria-label': 'Edit message', 'data-focus-key': `${message.id}:edit`, onClick: () => { this.editing = message.id; this.render() } }, 'Edit') : null,
      mine || this.me.moderator ? h('button', { type: 'button', class: 'link', 'aria-label': mine ? 'Delete message' : `Delete message of ${message.user}`, 'data-focus-key': `${message.id}:delete`, onClick: () => this.remove(message) }, 'Delete') : null)
    const body = deleted
      ? h('p', { class: 'msg-body deleted' }, `Message deleted${message.deleted_by ? ` by ${message.deleted_by}` : ''}`, message.body ? h('s', null, ` ${message.body}`) : null)
      : h('p', { class: 'msg-body' }, message.body)
    return h('li', { class: 'msg', 'data-id': message.id }, head, body, actions)
  }

  /** Leaves the edit form; the focus goes back to the message's Edit button. */
  private stopEditing(id: number): void {
    this.editing = null
    this.render()
    this.list.querySelector<HTMLElement>(`[data-focus-key="${id}:edit"]`)?.focus()
  }

  private async remove(message: Message): Promise<void> {
    try {
      await this.live.request('chat.delete', { message_id: message.id })
    } catch (error) {
      toast(`Not deleted: ${(error as Error).message}`, 'error')
    }
  }

  clear(): void {
    this.messages.clear()
    mount(this.list)
  }
}
