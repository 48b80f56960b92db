// The keyboard shortcuts overlay: `?` opens it from any page (unless the
// focus is in a field being typed in), Escape or its Close button closes
// it and gives the focus back to where it was. It lists what the pages
// answer to; every action is also a button or link reachable with Tab.

import { h } from './dom'

const SHORTCUTS: [string, string][] = [
  ['?', 'Show or hide this list'],
  ['1 – 9', 'In a task: pick the option or apply the label of that number (spans: to the selected text)'],
  ['A label’s key', 'In a task: the same for the label whose hotkey the project set (shown beside it); not while typing'],
  ['Shift + arrows', 'In a span task’s text: select words to label'],
  ['Enter', 'In chat: send the message (Shift + Enter: a new line)'],
  ['Escape', 'Close this list; in chat: stop editing a message'],
  ['Tab / Shift + Tab', 'Move between every button, link and field, on every page'],
]

function typing(target: EventTarget | null): boolean {
  if (!(target instanceof HTMLElement)) return false
  if (target.isContentEditable) return true
  if (target instanceof HTMLTextAreaElement) return !target.readOnly
  return target instanceof HTMLInputElement && !['checkbox', 'radio', 'button', 'submit', 'file'].includes(target.type)
}

/** Installs the `?` key on the whole page (once, from main.ts). */
export function installShortcuts(): void {
  let open: { dialog: HTMLElement; back: Element | null } | null = null
  const close = () => {
    if (!open) return
    open.dialog.remove()
    if (open.back instanceof HTMLElement) open.back.focus()
    open = null
  }
  const show = () => {
    const closeButton = h('button', { type: 'button' }, 'Close')
    closeButton.addEventListener('click', close)
    const dialog = h('div', { class: 'shortcuts', role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': 'shortcuts-title' },
      h('div', { class: 'shortcuts-card' },
        h('h2', { id: 'shortcuts-title' }, 'Keyboard shortcuts'),
        h('dl', null, SHORTCUTS.map(([keys, what]) => h('div', null, h('dt', null, h('kbd', null, keys)), h('dd', null, what)))),
        closeButton))
    open = { dialog, back: document.activeElement }
    document.body.append(dialog)
    closeButton.focus()
  }
  document.addEventListener('keydown', (event) => {
    if (open && event.key === 'Escape') {
      event.preventDefault()
      return close()
    }
    if (event.key !== '?' || event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return
    event.preventDefault()
    if (open) close()
    else show()
  })
}
