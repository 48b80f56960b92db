// The answer form of one task, bound to its shared annotation document: the
// widget for the project's answer schema (spans over the task text, one or
// several choices, free text, a number), the people editing with me and
// where they are, and comments. Every change goes into the Y.Doc; the view
// re-renders from the document, so local, remote and offline edits all
// take the same path.

import * as Y from 'yjs'
import type { AnswerSchema, LabelStyle } from './wire'
import { h, mount, userColor } from './dom'
import { time } from './format'
import * as model from './schema'
import { Surface, type Mark, type Remote } from './surface'
import type { SharedDoc } from './ydoc'

export interface EditorOptions {
  shared: SharedDoc
  schema: AnswerSchema
  task: { id: number; data: Record<string, unknown> }
  me: { user: string; display_name: string }
  /** False while the room is locked (for non-moderators) or for viewers. */
  canEdit: () => boolean
  /** The project's label colours and hotkeys (`label_styles`). */
  styles?: Record<string, LabelStyle>
}

const LABEL_COLORS = ['#ffd8a8', '#b2f2bb', '#a5d8ff', '#fcc2d7', '#d0bfff', '#ffec99', '#99e9f2', '#c3fae8', '#e9ecef']

export function taskText(data: Record<string, unknown>): string {
  return typeof data.text === 'string' ? data.text : JSON.stringify(data)
}

function options(schema: AnswerSchema): string[] {
  if (schema.kind === 'spans') return schema.labels
  if (schema.kind === 'single_choice' || schema.kind === 'multi_label') return schema.options
  return []
}

/** A label's colour: the project's, else one of a fixed light set by its position. */
export function labelColor(schema: AnswerSchema, label: string, styles?: Record<string, LabelStyle>): string {
  const chosen = styles?.[label]?.colour
  if (chosen && /^#[0-9a-fA-F]{6}$/.test(chosen)) return chosen
  const index = options(schema).indexOf(label)
  return LABEL_COLORS[(index < 0 ? 8 : index) % LABEL_COLORS.length]
}

/** Black or white text, whichever contrasts more with `background` (#rrggbb; WCAG relative luminance). */
export function inkOn(background: string): string {
  const channel = (at: number) => {
    const value = Number.parseInt(background.slice(at, at + 2), 16) / 255
    return value <= 0.03928 ? value / 12.92 : ((value + 0.055) / 1.055) ** 2.4
  }
  const luminance = 0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5)
  // Contrast with black is (L + 0.05) / 0.05, with white 1.05 / (L + 0.05): equal at L ≈ 0.179.
  return luminance > 0.179 ? '#1b1f24' : '#ffffff'
}

/** Whether a key press is typing: in a text field, an editable text area, a select or editable content (chat included). */
function typing(target: EventTarget | null): boolean {
  if (!(target instanceof HTMLElement)) return false
  if (target.isContentEditable || target instanceof HTMLSelectElement) return true
  if (target instanceof HTMLTextAreaElement) return !target.readOnly && target.getAttribute('aria-readonly') !== 'true'
  return target instanceof HTMLInputElement && !['checkbox', 'radio', 'button', 'submit', 'reset', 'file', 'range', 'color'].includes(target.type)
}

export class Editor {
  readonly element: HTMLElement
  private surface: Surface | null = null
  private lastSelection: [number, number] = [0, 0]
  private dynamic = h('div', { class: 'editor-dynamic' })
  private peersLine = h('p', { class: 'peers', 'aria-live': 'polite' })
  private comments = h('div', { class: 'comments' })
  private cleanups: (() => void)[] = []
  private readonly doc: Y.Doc

  constructor(private readonly options: EditorOptions) {
    this.doc = options.shared.doc
    const { schema, task } = options
    const fieldId = `answer-${task.id}`
    const parts: HTMLElement[] = []
    if (schema.kind === 'spans') {
      parts.push(this.labelBar())
      this.surface = new Surface({
        id: fieldId,
        label: 'Task text: select a passage, then press a label button or its number key',
        value: taskText(task.data),
        readOnly: true,
        fixed: true,
        onSelect: (start, end) => this.selected('task', start, end),
      })
      parts.push(this.surface.element)
    } else {
      parts.push(h('blockquote', { class: 'task-text' }, taskText(task.data)))
    }
    if (schema.kind === 'free_text') {
      const text = model.freeText(this.doc)
      this.surface = new Surface({
        id: fieldId,
        label: 'Your answer',
        value: text.toString(),
        readOnly: !options.canEdit(),
        onSelect: (start, end) => this.selected('text', start, end),
        onInput: () => this.typed(),
      })
      if (schema.max_chars != null) this.surface.textarea.maxLength = schema.max_chars
      const observer = (event: Y.YTextEvent) => this.remoteText(event)
      text.observe(observer)
      this.cleanups.push(() => text.unobserve(observer))
      parts.push(h('label', { for: fieldId, class: 'field-label' }, 'Your answer'), this.surface.element)
    }
    this.element = h('section', { class: 'editor', 'aria-label': 'Answer' },
      ...parts, this.dynamic, this.peersLine, this.comments)
    // On the whole page, so a key works wherever the focus is (the queue's
    // buttons, the submit button), except while typing (chat, notes).
    const keys = (event: KeyboardEvent) => this.shortcut(event)
    document.addEventListener('keydown', keys)
    this.cleanups.push(() => document.removeEventListener('keydown', keys))
    const observer = () => this.render()
    for (const root of ['spans', 'labels', 'comments']) {
      const type = root === 'labels' ? this.doc.getMap(root) : this.doc.getArray(root)
      type.observeDeep(observer)
      this.cleanups.push(() => type.unobserveDeep(observer))
    }
    this.cleanups.push(options.shared.onChange(() => this.renderPeers()))
    this.render()
  }

  destroy(): void {
    this.surface?.destroy()
    for (const cleanup of this.cleanups) cleanup()
  }

  /** Re-renders after something outside the document changed (lock, role). */
  refresh(): void {
    this.render()
  }

  private selected(field: string, start: number, end: number): void {
    this.lastSelection = [start, end]
    if (field === 'text') {
      const text = model.freeText(this.doc)
      const anchor = Y.relativePositionToJSON(Y.createRelativePositionFromTypeIndex(text, start))
      const head = Y.relativePositionToJSON(Y.createRelativePositionFromTypeIndex(text, end))
      this.options.shared.setSelection({ field, anchor, head })
    } else {
      this.options.shared.setSelection({ field, anchor: start, head: end })
    }
  }

  private labelBar(): HTMLElement {
    const schema = this.options.schema as Extract<AnswerSchema, { kind: 'spans' }>
    return h('div', { class: 'label-bar', role: 'toolbar', 'aria-label': 'Labels' },
      schema.labels.map((label, index) => {
        const colour = labelColor(schema, label, this.options.styles)
        return h('button', {
          type: 'button',
          class: 'label-button',
          'data-label': label,
          style: { background: colour, color: inkOn(colour) },
          'aria-keyshortcuts': this.keysOf(label, index),
          onClick: () => this.applyLabel(label),
        }, index < 9 ? h('kbd', null, String(index + 1)) : null, label, this.hotkeyOf(label) ? [' ', h('kbd', { class: 'hotkey' }, this.hotkeyOf(label))] : null)
      }))
  }

  /** A label's hotkey, if the project gives it one. */
  private hotkeyOf(label: string): string | null {
    return this.options.styles?.[label]?.hotkey ?? null
  }

  /** `aria-keyshortcuts` of a label: its number key and its hotkey. */
  private keysOf(label: string, index: number): string | null {
    const keys = [index < 9 ? String(index + 1) : null, this.hotkeyOf(label)].filter((key): key is string => key !== null)
    return keys.length ? keys.join(' ') : null
  }

  private applyLabel(label: string): void {
    if (!this.options.canEdit()) return
    const [a, b] = this.lastSelection
    const [start, end] = [Math.min(a, b), Math.max(a, b)]
    if (start === end) {
      this.hint('Select a passage of the text first.')
      return
    }
    model.addSpan(this.doc, { start, end, label, author: this.options.me.user })
  }

  private hint(message: string): void {
    const hint = this.element.querySelector('.hint') ?? this.dynamic.insertBefore(h('p', { class: 'hint', role: 'status' }), this.dynamic.firstChild)
    hint.textContent = message
  }

  /** Number keys and the project's hotkeys pick labels or options, unless typing in a field or a dialog is open. */
  private shortcut(event: KeyboardEvent): void {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey || [...event.key].length !== 1) return
    if (typing(event.target) || document.querySelector('[role="dialog"]')) return
    const all = options(this.options.schema)
    const key = event.key.toLowerCase()
    const choice = /^[1-9]$/.test(event.key) ? all[Number(event.key) - 1] : all.find((label) => this.hotkeyOf(label)?.toLowerCase() === key)
    if (choice === undefined) return
    event.preventDefault()
    if (this.options.schema.kind === 'spans') this.applyLabel(choice)
    else this.choose(choice)
  }

  private choose(option: string): void {
    if (!this.options.canEdit()) return
    const labels = model.labels(this.doc)
    if (this.options.schema.kind === 'multi_label') {
      const current = labels.get('answer')
      const chosen = new Set(Array.isArray(current) ? current : [])
      if (chosen.has(option)) chosen.delete(option)
      else chosen.add(option)
      labels.set('answer', this.options.schema.options.filter((candidate) => chosen.has(candidate)))
    } else {
      labels.set('answer', option)
    }
    this.options.shared.setSelection({ field: 'choice', anchor: option, head: option })
  }

  /** A local edit of the free text: one minimal replace in the Y.Text. */
  private typed(): void {
    const text = model.freeText(this.doc)
    const before = text.toString()
    const after = this.surface?.value ?? ''
    let prefix = 0
    while (prefix < before.length && prefix < after.length && before[prefix] === after[prefix]) prefix++
    let suffix = 0
    while (suffix < before.length - prefix && suffix < after.length - prefix && before[before.length - 1 - suffix] === after[after.length - 1 - suffix]) suffix++
    this.doc.transact(() => {
      if (before.length - prefix - suffix > 0) text.delete(prefix, before.length - prefix - suffix)
      if (after.length - prefix - suffix > 0) text.insert(prefix, after.slice(prefix, after.length - suffix))
    }, this)
  }

  /** A remote edit of the free text: update the field and carry my selection along. */
  private remoteText(event: Y.YTextEvent): void {
    if (event.transaction.origin === this || !this.surface) return
    const textarea = this.surface.textarea
    const move = (position: number) => {
      let index = 0
      let moved = position
      for (const change of event.delta) {
        if (change.retain) index += change.retain
        else if (change.insert) {
          const length = typeof change.insert === 'string' ? change.insert.length : 1
          if (index <= position) moved += length
          index += length
        } else if (change.delete) {
          if (index < position) moved -= Math.min(change.delete, position - index)
        }
      }
      return moved
    }
    const selection: [number, number] = [move(textarea.selectionStart), move(textarea.selectionEnd)]
    this.surface.setValue(model.freeText(this.doc).toString(), selection)
    this.renderPeers()
  }

  private render(): void {
    const { schema } = this.options
    const editable = this.options.canEdit()
    if (this.surface && schema.kind === 'free_text') this.surface.readOnly = !editable
    const answer = model.labels(this.doc).get('answer')
    if (schema.kind === 'spans') mount(this.dynamic, this.spanList(editable))
    else if (schema.kind === 'single_choice' || schema.kind === 'multi_label') {
      const multi = schema.kind === 'multi_label'
      const chosen = multi ? (Array.isArray(answer) ? answer : []) : [answer]
      mount(this.dynamic, h('fieldset', { class: 'choices' },
        h('legend', null, multi ? 'Choose every label that applies' : 'Choose one'),
        schema.options.map((option, index) =>
          h('label', { class: 'choice', 'data-option': option },
            h('input', { type: multi ? 'checkbox' : 'radio', name: `choice-${this.options.task.id}`, value: option, checked: chosen.includes(option), disabled: !editable, 'aria-keyshortcuts': this.keysOf(option, index), onChange: () => this.choose(option) }),
            index < 9 ? h('kbd', null, String(index + 1)) : null,
            h('span', { class: 'swatch', 'aria-hidden': 'true', style: { background: labelColor(schema, option, this.options.styles) } }),
            ` ${option}`,
            this.hotkeyOf(option) ? [' ', h('kbd', { class: 'hotkey', title: `Hotkey: ${this.hotkeyOf(option)}` }, this.hotkeyOf(option))] : null))))
    } else if (schema.kind === 'numeric') {
      this.renderNumber(schema, answer, editable)
    }
    this.renderComments(editable)
    this.renderPeers()
  }

  /**
   * The number field, built once and updated in place (typing is never
   * interrupted by a re-render). A number outside the schema's range is kept
   * in the document (the other tabs see it too) but marked invalid, with the
   * range said next to the field; submitting it is refused.
   */
  private renderNumber(schema: Extract<AnswerSchema, { kind: 'numeric' }>, answer: unknown, editable: boolean): void {
    const id = `number-${this.options.task.id}`
    let input = this.dynamic.querySelector<HTMLInputElement>(`#${id}`)
    let message = this.dynamic.querySelector<HTMLElement>(`#${id}-error`)
    if (!input || !message) {
      const range = schema.min != null || schema.max != null ? ` (${schema.min ?? '…'} to ${schema.max ?? '…'})` : ''
      message = h('p', { id: `${id}-error`, class: 'error field-error', 'aria-live': 'polite' })
      input = h('input', { id, type: 'number', step: 'any', min: schema.min ?? null, max: schema.max ?? null, 'aria-describedby': `${id}-error`,
        onInput: (event: Event) => {
          const value = (event.target as HTMLInputElement).valueAsNumber
          if (Number.isFinite(value)) model.labels(this.doc).set('answer', value)
          else model.labels(this.doc).delete('answer')
        } })
      mount(this.dynamic, h('label', { for: id, class: 'field-label' }, `Your answer${range}`), input, message)
    }
    input.disabled = !editable
    const value = typeof answer === 'number' && Number.isFinite(answer) ? answer : null
    // Another tab's edit shows here, but never over what I am typing (e.g. “1.” on the way to “1.5”).
    const shown = Number.isFinite(input.valueAsNumber) ? input.valueAsNumber : null
    if (document.activeElement !== input && shown !== value) input.value = value === null ? '' : String(value)
    const outside = value !== null && ((schema.min != null && value < schema.min) || (schema.max != null && value > schema.max))
    const text = !outside ? '' : schema.min != null && schema.max != null ? `Out of range: enter a number from ${schema.min} to ${schema.max}.` : schema.min != null ? `Out of range: enter at least ${schema.min}.` : `Out of range: enter at most ${schema.max}.`
    if (message.textContent !== text) message.textContent = text
    message.hidden = !outside
    if (outside) input.setAttribute('aria-invalid', 'true')
    else input.removeAttribute('aria-invalid')
  }

  private spanList(editable: boolean): HTMLElement {
    const schema = this.options.schema as Extract<AnswerSchema, { kind: 'spans' }>
    const text = taskText(this.options.task.data)
    const spans = model.spansOf(this.doc).sort((a, b) => a.start - b.start || a.end - b.end)
    const items = spans.map((span) => {
      const excerpt = text.slice(span.start, span.end)
      const move = (delta: number) => () => model.moveSpan(this.doc, span.id, Math.max(0, span.start + delta), Math.min(text.length, span.end + delta))
      const name = `“${excerpt}”`
      return h('li', { class: 'span-item', 'data-span-id': span.id, 'data-start': span.start, 'data-end': span.end, 'data-label': span.label },
        h('span', { class: 'chip', style: { background: labelColor(schema, span.label, this.options.styles), color: inkOn(labelColor(schema, span.label, this.options.styles)) } }, span.label),
        h('span', { class: 'excerpt' }, name, h('small', null, ` ${span.start}–${span.end} · ${span.author}`)),
        h('span', { class: 'span-actions' },
          h('button', { type: 'button', disabled: !editable || span.start === 0, 'aria-label': `Move ${name} left`, 'data-focus-key': `${span.id}:left`, onClick: move(-1) }, '◀'),
          h('button', { type: 'button', disabled: !editable || span.end >= text.length, 'aria-label': `Move ${name} right`, 'data-focus-key': `${span.id}:right`, onClick: move(1) }, '▶'),
          h('button', { type: 'button', disabled: !editable, 'aria-label': `Set ${name} to selection`, 'data-focus-key': `${span.id}:fit`, onClick: () => {
            const [a, b] = this.lastSelection
            if (a !== b) model.moveSpan(this.doc, span.id, Math.min(a, b), Math.max(a, b))
          } }, 'To selection'),
          h('button', { type: 'button', disabled: !editable, 'aria-label': `Remove ${name}`, 'data-focus-key': `${span.id}:remove`, onClick: () => {
            model.removeSpan(this.doc, span.id)
            // The button is gone with its span: the focus goes back to the text, to select again.
            this.surface?.textarea.focus()
          } }, 'Remove')))
    })
    this.paintSurface(spans)
    return h('div', null,
      h('h3', { class: 'sub' }, `Spans (${spans.length})`),
      spans.length ? h('ul', { class: 'span-list' }, items) : h('p', { class: 'muted' }, 'No spans yet: select text, then press a label.'))
  }

  private paintSurface(spans = model.spansOf(this.doc)): void {
    if (!this.surface) return
    const schema = this.options.schema
    const marks: Mark[] = schema.kind === 'spans' ? spans.map((span) => ({ start: span.start, end: span.end, color: labelColor(schema, span.label, this.options.styles) })) : []
    const field = schema.kind === 'spans' ? 'task' : 'text'
    const remotes: Remote[] = []
    for (const peer of this.options.shared.peers()) {
      const selection = peer.selection
      if (!selection || selection.field !== field || !peer.user) continue
      const resolve = (position: unknown): number | null => {
        if (typeof position === 'number') return position
        try {
          const absolute = Y.createAbsolutePositionFromRelativePosition(Y.createRelativePositionFromJSON(position), this.doc)
          return absolute ? absolute.index : null
        } catch {
          return null
        }
      }
      const [start, end] = [resolve(selection.anchor), resolve(selection.head)]
      if (start !== null && end !== null) remotes.push({ start, end, color: peer.user.color, name: this.peerName(peer.user) })
    }
    this.surface.show(marks, remotes)
  }

  /** A peer's name; my own other tabs (my working copy is shared by them) are said to be mine, not another person. */
  private peerName(user: { id: string; name: string }): string {
    return user.id === this.options.me.user ? 'You (another tab)' : user.name
  }

  private renderPeers(): void {
    this.paintSurface()
    const peers = this.options.shared.peers()
    const seen = new Set<string>()
    const chips = peers.filter((peer) => peer.user && !seen.has(peer.user.id) && seen.add(peer.user.id)).map((peer) => {
      const user = peer.user!
      const selection = peer.selection
      let where = ''
      if (selection?.field === 'choice') where = ` on “${String(selection.head)}”`
      else if (selection?.field === 'task' && typeof selection.anchor === 'number' && typeof selection.head === 'number' && selection.anchor !== selection.head) {
        where = ` selecting “${taskText(this.options.task.data).slice(Math.min(selection.anchor, selection.head), Math.max(selection.anchor, selection.head))}”`
      } else if (selection) where = ' editing'
      return h('span', { class: 'peer', 'data-user': user.id, style: { '--c': user.color } }, h('span', { class: 'dot', 'aria-hidden': 'true' }), this.peerName(user) + where)
    })
    mount(this.peersLine, chips.length ? ['Here with you: ', ...chips] : h('span', { class: 'muted' }, 'Nobody else is editing this answer.'))
  }

  private renderComments(editable: boolean): void {
    const comments = model.commentsOf(this.doc)
    const id = `comment-${this.options.task.id}`
    const input = h('input', { id, type: 'text', maxLength: 2000, disabled: !editable, placeholder: 'Add a note for the team…' })
    const existing = this.comments.querySelector<HTMLInputElement>(`#${id}`)
    if (existing) input.value = existing.value
    const hadFocus = document.activeElement === existing
    mount(this.comments,
      h('h3', { class: 'sub' }, 'Notes'),
      comments.length ? h('ul', { class: 'comment-list' }, comments.map((comment) =>
        h('li', null, h('b', { style: { color: userColor(comment.author) } }, comment.author), ` ${comment.body} `, h('small', null, time(comment.at))))) : null,
      h('form', { class: 'inline-form', onSubmit: (event: Event) => {
        event.preventDefault()
        const body = input.value.trim()
        if (!body || !this.options.canEdit()) return
        // Cleared first: adding the comment re-renders this form from the old input's value.
        input.value = ''
        model.addComment(this.doc, { author: this.options.me.user, body })
        this.comments.querySelector<HTMLInputElement>(`#${id}`)?.focus()
      } }, h('label', { for: id, class: 'visually-hidden' }, 'Note'), input, h('button', { type: 'submit', disabled: !editable }, 'Add note')))
    if (hadFocus) input.focus()
  }
}
