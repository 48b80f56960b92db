// Text with highlights and other people's cursors, selectable by mouse and
// keyboard: a native <textarea> (so selection, focus, screen readers and
// UTF-16 offsets come for free) over a "backdrop" that paints the same text
// with span colours, remote selections and named carets. Both layers share
// font, padding and wrapping, so the paint lines up with the letters.
//
// A task's text (`fixed`) must not change but must be selectable by
// keyboard, and Chromium moves no caret in a `readonly` textarea (Shift+
// arrows select nothing there). So a fixed surface is an editable textarea
// that refuses every edit (`beforeinput`, and an IME's uncancellable
// composition is undone on `input`), marked aria-readonly for screen
// readers, with inputmode=none so a tablet opens no on-screen keyboard.

import { h } from './dom'

export interface Mark { start: number; end: number; color: string; title?: string }
export interface Remote { start: number; end: number; color: string; name: string }

export class Surface {
  readonly element: HTMLElement
  readonly textarea: HTMLTextAreaElement
  private readonly backdrop: HTMLElement
  private marks: Mark[] = []
  private remotes: Remote[] = []
  private readonly onSelectionChange: () => void
  private readonly resize = new ResizeObserver(() => this.fit())

  /** `fixed`: text that never changes but that the caret moves in (the task's text to select spans in). */
  constructor(options: { label: string; value: string; readOnly: boolean; fixed?: boolean; id: string; onSelect: (start: number, end: number) => void; onInput?: () => void }) {
    this.backdrop = h('div', { class: 'backdrop', 'aria-hidden': 'true' })
    this.textarea = h('textarea', {
      id: options.id,
      class: 'surface-text',
      readOnly: options.readOnly && !options.fixed,
      spellcheck: false,
      rows: 3,
      'aria-label': options.label,
      'aria-readonly': options.fixed ? 'true' : null,
      inputMode: options.fixed ? 'none' : null,
    })
    this.textarea.value = options.value
    if (options.fixed) {
      const text = options.value
      this.textarea.addEventListener('beforeinput', (event) => event.preventDefault())
      this.textarea.addEventListener('input', (event) => {
        event.stopImmediatePropagation()
        const at = Math.min(this.textarea.selectionStart, text.length)
        this.textarea.value = text
        this.textarea.setSelectionRange(at, at)
      })
    }
    const select = () => options.onSelect(this.textarea.selectionStart, this.textarea.selectionEnd)
    for (const event of ['select', 'keyup', 'mouseup', 'focus']) this.textarea.addEventListener(event, select)
    this.onSelectionChange = () => {
      if (document.activeElement === this.textarea) select()
    }
    document.addEventListener('selectionchange', this.onSelectionChange)
    this.textarea.addEventListener('input', () => {
      options.onInput?.()
      this.fit()
      this.paint()
    })
    this.textarea.addEventListener('scroll', () => (this.backdrop.scrollTop = this.textarea.scrollTop))
    this.element = h('div', { class: 'surface' }, this.backdrop, this.textarea)
    this.resize.observe(this.element)
  }

  destroy(): void {
    document.removeEventListener('selectionchange', this.onSelectionChange)
    this.resize.disconnect()
  }

  get value(): string {
    return this.textarea.value
  }

  /** Replaces the text, keeping the local selection where the caller says it moved. */
  setValue(value: string, selection?: [number, number]): void {
    if (this.textarea.value === value) return
    this.textarea.value = value
    if (selection) this.textarea.setSelectionRange(selection[0], selection[1])
    this.fit()
    this.paint()
  }

  set readOnly(value: boolean) {
    this.textarea.readOnly = value
  }

  /** Grows the textarea to its content so nothing scrolls inside it. */
  fit(): void {
    this.textarea.style.height = 'auto'
    this.textarea.style.height = `${this.textarea.scrollHeight + 2}px`
  }

  show(marks: Mark[], remotes: Remote[]): void {
    this.marks = marks
    this.remotes = remotes
    this.paint()
  }

  private paint(): void {
    const text = this.textarea.value
    const length = text.length
    const clamp = (value: number) => Math.max(0, Math.min(length, value))
    const cuts = new Set([0, length])
    for (const mark of this.marks) cuts.add(clamp(mark.start)).add(clamp(mark.end))
    for (const remote of this.remotes) cuts.add(clamp(remote.start)).add(clamp(remote.end))
    const points = [...cuts].sort((a, b) => a - b)
    const pieces: Node[] = []
    const caretsAt = (at: number) =>
      this.remotes
        .filter((remote) => clamp(remote.end) === at)
        .map((remote) => h('span', { class: 'caret', 'data-name': remote.name, style: { '--c': remote.color } }))
    for (let i = 0; i < points.length - 1; i++) {
      const [start, end] = [points[i], points[i + 1]]
      pieces.push(...caretsAt(start))
      const covering = this.marks.filter((mark) => clamp(mark.start) <= start && clamp(mark.end) >= end)
      const selected = this.remotes.find((remote) => Math.min(remote.start, remote.end) <= start && Math.max(remote.start, remote.end) >= end && remote.start !== remote.end)
      const style: Record<string, string> = {}
      if (covering.length) style.background = covering[covering.length - 1].color
      if (covering.length > 1) style.boxShadow = 'inset 0 -0.25em 0 rgba(0,0,0,0.35)'
      if (selected) style.outline = `2px solid ${selected.color}`
      pieces.push(h('span', { class: covering.length ? 'mark' : null, style }, text.slice(start, end)))
    }
    if (points.length === 1) pieces.push(...caretsAt(0))
    else pieces.push(...caretsAt(length))
    // A trailing newline needs a character after it to take up its line.
    if (text.endsWith('\n')) pieces.push(document.createTextNode(' '))
    this.backdrop.replaceChildren(...pieces)
  }
}
