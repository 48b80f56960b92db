// The room's chat: history paged back with chat.history, live messages,
// edits and deletions, own-message editing, moderator deletion, and the
// reasons a person cannot send (viewer, muted, room locked) shown next to
// the disabled input instead of as a failed request.
//
// The list is updated incrementally, never redrawn whole: a new message is
// appended, an edited or deleted one is updated inside its own <li>, a
// history page is prepended (keeping the scroll position). The list itself
// is not a live region (a screen reader would read history pages and edits
// again); a separate visually-hidden status element gets the text of each
// new message from someone else, and only that is announced.

import { h, mount, toast, userColor } from './dom'
import { time } from './format'
import type { LiveClient } from './live'
import { LiveError } from './live'
import type { PresenceStore } from './presence'
import type { ChatPage, Message } from './wire'

const PAGE = 50

export class ChatPanel {
  readonly element: HTMLElement
  private messages = new Map<number, Message>()
  /** The <li> of each message, by id; the list holds them in id order. */
  private nodes = new Map<number, HTMLLIElement>()
  private list = h('ol', { class: 'chat-list', 'aria-label': 'Messages' })
  /** What screen readers hear: each new message from someone else (added here as its own line), nothing else. */
  private announcer = h('div', { class: 'visually-hidden', role: 'status', 'aria-live': 'polite', 'aria-relevant': 'additions', 'aria-atomic': 'false', 'data-chat-announcer': '' })
  private more = h('button', { type: 'button', class: 'link', onClick: () => this.loadEarlier() }, 'Load earlier messages')
  private input = h('textarea', { id: 'chat-input', rows: 2, maxLength: 4000, placeholder: 'Message the room', title: 'Enter sends, Shift+Enter starts a new line' })
  private send = h('button', { type: 'submit' }, 'Send')
  private blocked = h('p', { class: 'chat-blocked', role: 'status' })
  private editing: number | null = null
  private exhausted = false
  /** Whether the Edit buttons were drawn with sending blocked; items are redrawn only when this changes. */
  private drawnBlocked: boolean | null = null

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
      this.announcer,
      this.blocked,
      h('form', { class: 'chat-form', onSubmit: (event: Event) => {
        event.preventDefault()
        this.submit()
      } }, h('label', { for: 'chat-input', class: 'visually-hidden' }, 'Message'), this.input, this.send))
    live.on('hello', () => this.loadLatest())
    live.on('chat.message', (message: Message) => {
      const fresh = !this.messages.has(message.id)
      this.put([message])
      if (fresh && message.user !== this.me.user && message.deleted_at === null) this.announce(message)
    })
    for (const event of ['chat.edited', 'chat.deleted']) live.on(event, (message: Message) => this.put([message]))
    presence.onChange(() => this.renameAll())
    this.refresh()
  }

  /** Re-checks whether I may send (mute, lock). */
  refresh(): void {
    const block = this.sendBlock()
    this.input.disabled = block !== null
    this.send.disabled = block !== null
    this.blocked.textContent = block ?? ''
    this.blocked.hidden = block === null
    this.more.hidden = this.exhausted
    // My Edit buttons come and go with the block: only then are the items redrawn (each in place).
    if (this.drawnBlocked !== (block !== null)) {
      this.drawnBlocked = block !== null
      for (const id of this.nodes.keys()) this.draw(id)
    }
  }

  private async loadLatest(): Promise<void> {
    try {
      const { messages } = await this.live.request<ChatPage>('chat.history', { limit: PAGE })
      this.exhausted = messages.length < PAGE
      this.more.hidden = this.exhausted
      this.put(messages)
    } catch {
      // The next hello loads it again.
    }
  }

  private async loadEarlier(): Promise<void> {
    const oldest = Math.min(...this.messages.keys())
    if (!Number.isFinite(oldest)) return this.loadLatest()
    try {
      const { messages } = await this.live.request<ChatPage>('chat.history', { before: oldest, limit: PAGE })
      this.exhausted = messages.length < PAGE
      this.more.hidden = this.exhausted
      // Older messages go above: the ones being read stay where they are on screen.
      const before = this.list.scrollHeight
      const top = this.list.scrollTop
      this.put(messages, false)
      this.list.scrollTop = top + (this.list.scrollHeight - before)
      // The button hides when the history is exhausted: its focus goes to the oldest message, not to the page's start.
      if (this.more.hidden && document.activeElement === this.more) {
        const oldest = this.list.firstElementChild as HTMLElement | null
        if (oldest) {
          oldest.tabIndex = -1
          oldest.focus({ preventScroll: true })
        }
      }
    } catch (error) {
      toast(`Could not load history: ${(error as Error).message}`, 'error')
    }
  }

  /** Adds new messages in id order and updates known ones in place. */
  private put(messages: Message[], scroll = true): void {
    const atBottom = this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < 40
    const wasEmpty = this.nodes.size === 0
    const added: number[] = []
    for (const message of messages) {
      const known = this.messages.get(message.id)
      this.messages.set(message.id, message)
      if (!known) added.push(message.id)
      else if (!same(known, message)) this.draw(message.id)
    }
    added.sort((a, b) => a - b)
    // Most additions are at either end (live messages, history pages): one fragment each.
    const ids = [...this.nodes.keys()]
    const [lowest, highest] = ids.length ? [Math.min(...ids), Math.max(...ids)] : [Infinity, -Infinity]
    const head = document.createDocumentFragment()
    const tail = document.createDocumentFragment()
    for (const id of added) {
      const item = h('li', { class: 'msg', 'data-id': id })
      this.nodes.set(id, item)
      this.draw(id)
      if (id < lowest) head.appendChild(item)
      else if (id > highest) tail.appendChild(item)
      else this.list.insertBefore(item, this.nextNode(id))
    }
    if (head.childNodes.length) this.list.prepend(head)
    if (tail.childNodes.length) this.list.append(tail)
    if ((scroll && atBottom) || wasEmpty) this.list.scrollTop = this.list.scrollHeight
  }

  /** The first item after `id` in the list, or null. */
  private nextNode(id: number): HTMLLIElement | null {
    let best: number | null = null
    for (const other of this.nodes.keys()) if (other > id && this.nodes.get(other)!.isConnected && (best === null || other < best)) best = other
    return best === null ? null : this.nodes.get(best)!
  }

  private announce(message: Message): void {
    // An added line is announced even when its text repeats the previous one; old lines go (removals are not announced).
    this.announcer.appendChild(h('p', null, `${this.presence.name(message.user)}: ${message.body}`))
    while (this.announcer.childElementCount > 3) this.announcer.firstElementChild?.remove()
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

  /** Names follow the people list (display names arrive with presence): only the name texts change. */
  private renameAll(): void {
    for (const name of this.list.querySelectorAll<HTMLElement>('.msg-head b[data-user]')) {
      const text = this.presence.name(name.dataset.user!)
      if (name.textContent !== text) name.textContent = text
    }
  }

  /** (Re)draws one message inside its own <li>; the focus, if it was in there, stays on the same control. */
  private draw(id: number): void {
    const item = this.nodes.get(id)
    const message = this.messages.get(id)
    if (!item || !message) return
    const mine = message.user === this.me.user
    const deleted = message.deleted_at !== null
    const head = h('div', { class: 'msg-head' },
      h('b', { style: { color: userColor(message.user) }, 'data-user': message.user }, this.presence.name(message.user)),
      h('small', null, ` ${time(message.created_at)}${message.edited_at && !deleted ? ' (edited)' : ''}`))
    if (this.editing === message.id && !deleted) {
      const previous = item.querySelector<HTMLInputElement>('input[data-edit]')
      const field = h('input', { type: 'text', value: previous?.value ?? message.body, 'aria-label': 'Edit message', maxLength: 4000, 'data-edit': '' })
      if (!previous) queueMicrotask(() => field.focus())
      mount(item, head, h('form', { class: 'inline-form', onSubmit: async (event: Event) => {
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
      return
    }
    const actions = deleted ? null : h('span', { class: 'msg-actions' },
      mine && !this.sendBlock() ? h('button', { type: 'button', class: 'link', 'aria-label': 'Edit message', 'data-focus-key': `${message.id}:edit`, onClick: () => this.startEditing(message.id) }, 'Edit') : null,
      mine || this.me.moderator ? h('button', { type: 'button', class: 'link', 'aria-label': mine ? 'Delete message' : `Delete message of ${message.user}`, 'data-focus-key': `${message.id}:delete`, onClick: () => this.remove(message) }, 'Delete') : null)
    const body = deleted
      ? h('p', { class: 'msg-body deleted' }, `Message deleted${message.deleted_by ? ` by ${message.deleted_by}` : ''}`, message.body ? h('s', null, ` ${message.body}`) : null)
      : h('p', { class: 'msg-body' }, message.body)
    const focusWasHere = item.contains(document.activeElement) && document.activeElement !== item
    mount(item, head, body, actions)
    // The control that had the focus is gone (a deleted message has no buttons): keep the focus in the list.
    if (focusWasHere && !item.contains(document.activeElement)) {
      item.tabIndex = -1
      item.focus({ preventScroll: true })
    }
  }

  private startEditing(id: number): void {
    const previous = this.editing
    this.editing = id
    if (previous !== null && previous !== id) this.draw(previous)
    this.draw(id)
  }

  /** Leaves the edit form; the focus goes back to the message's Edit button. */
  private stopEditing(id: number): void {
    if (this.editing === id) this.editing = null
    this.draw(id)
    this.nodes.get(id)?.querySelector<HTMLElement>(`[data-focus-key="${id}:edit"]`)?.focus()
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
    this.nodes.clear()
    this.editing = null
    mount(this.list)
  }
}

function same(a: Message, b: Message): boolean {
  return a.body === b.body && a.edited_at === b.edited_at && a.deleted_at === b.deleted_at && a.deleted_by === b.deleted_by && a.user === b.user && a.created_at === b.created_at
}
