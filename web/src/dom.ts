// A tiny DOM builder instead of a framework: the views are small, update
// from discrete events (socket frames, Yjs observers), and re-render their
// own subtree. Children may be nodes, strings, or null/false (skipped), so
// conditional markup reads inline.

export type Child = Node | string | number | null | undefined | false | Child[]

type Attrs = Record<string, unknown>

/** Creates an element. `on*` attributes bind listeners; `class`, `for`, `aria-*`, `data-*` set attributes; other keys set properties. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs?: Attrs | null,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag)
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue
    if (key.startsWith('on') && typeof value === 'function') {
      element.addEventListener(key.slice(2).toLowerCase(), value as EventListener)
    } else if (key === 'style' && typeof value === 'object') {
      for (const [property, setting] of Object.entries(value as Record<string, string>)) {
        if (property.startsWith('--')) element.style.setProperty(property, setting)
        else (element.style as unknown as Record<string, string>)[property] = setting
      }
    } else if (key === 'class' || key === 'for' || key === 'role' || key.includes('-')) {
      element.setAttribute(key, value === true ? '' : String(value))
    } else {
      ;(element as unknown as Record<string, unknown>)[key] = value
    }
  }
  append(element, children)
  return element
}

function append(parent: Node, children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue
    if (Array.isArray(child)) append(parent, child)
    else parent.appendChild(child instanceof Node ? child : document.createTextNode(String(child)))
  }
}

/**
 * Replaces every child of `parent`. Views re-render whole subtrees on every
 * event, so if the focus was inside `parent` it is put back on the new
 * element that stands for the same thing (see `focusKey`): a keyboard user
 * does not lose their place when a count, a message or a span changes.
 */
/** A form field: its label above its control (`id` ties them). */
export function field(id: string, label: string, control: HTMLElement): HTMLElement {
  return h('div', { class: 'field' }, h('label', { for: id }, label), control)
}

export function mount(parent: Element, ...children: Child[]): void {
  const focused = document.activeElement
  const key = focused instanceof HTMLElement && focused !== parent && parent.contains(focused) ? focusKey(focused) : null
  parent.replaceChildren()
  append(parent, children)
  if (key === null || parent.contains(document.activeElement)) return
  for (const candidate of parent.querySelectorAll<HTMLElement>(FOCUSABLE)) {
    if (focusKey(candidate) === key && !(candidate as HTMLButtonElement).disabled) {
      candidate.focus({ preventScroll: true })
      return
    }
  }
}

const FOCUSABLE = 'a[href], button, input, select, textarea, [tabindex]'

/** What a focusable element stands for across re-renders: `data-focus-key`, else its id, else its link target, name, label and text together. */
function focusKey(element: HTMLElement): string {
  const which = element.dataset.focusKey ?? (element.id || [
    element.getAttribute('href'),
    element instanceof HTMLInputElement && element.name ? `${element.name}=${element.value}` : null,
    element.getAttribute('aria-label'),
    (element.textContent ?? '').trim(),
  ].join('|'))
  return `${element.tagName}:${which}`
}

/** A stable colour per user id, dark enough for white text (WCAG AA). */
export function userColor(user: string): string {
  let hash = 0
  for (let i = 0; i < user.length; i++) hash = (hash * 31 + user.charCodeAt(i)) >>> 0
  return `hsl(${hash % 360} 75% 27%)`
}

/** A transient message in the page's live region (screen readers hear it). */
export function toast(message: string, kind: 'info' | 'error' = 'info'): void {
  let region = document.getElementById('toasts')
  if (!region) {
    region = h('div', { id: 'toasts', 'aria-live': 'polite', class: 'toasts' })
    document.body.appendChild(region)
  }
  const item = h('div', { class: `toast toast-${kind}`, role: kind === 'error' ? 'alert' : 'status' }, message)
  region.appendChild(item)
  // Only the latest few stay, so a burst of actions does not cover the page.
  while (region.children.length > 3) region.firstElementChild?.remove()
  setTimeout(() => item.remove(), 5000)
}
