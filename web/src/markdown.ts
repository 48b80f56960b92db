// A small Markdown subset for a project's instructions, built as DOM nodes
// (text nodes and a fixed set of elements), never as an HTML string: raw
// HTML in the source stays text, so nothing a moderator types can reach
// the DOM as markup, whatever it contains. Why not a package: what
// instructions need (headings, paragraphs, emphasis, code, lists, quotes,
// links) fits in this file, and a renderer that returns HTML would need
// innerHTML and a sanitizer after it. Links keep only http(s) and mailto.
// Headings start at h3, under the page's own h1 and h2.
//
// Blocks: `#`–`######` headings, paragraphs, `-`/`*`/`+` and `1.` lists
// (one level), `>` quotes, ``` fenced code, `---` rules.
// Inline: `code`, **strong**, *em* and _em_, [text](url).

import { h } from './dom'

const HEADING = /^(#{1,6})\s+(.*?)\s*#*\s*$/
const RULE = /^\s*([-*_])(\s*\1){2,}\s*$/
const ITEM = /^\s*([-*+]|\d{1,9}[.)])\s+(.*)$/
const QUOTE = /^\s*>\s?(.*)$/
const FENCE = /^\s*```/

/** The blocks of `source`, as elements to append. */
export function renderMarkdown(source: string): HTMLElement[] {
  return blocks(source.replace(/\r\n?/g, '\n').split('\n'))
}

function startsBlock(line: string): boolean {
  return HEADING.test(line) || RULE.test(line) || ITEM.test(line) || QUOTE.test(line) || FENCE.test(line)
}

function blocks(lines: string[]): HTMLElement[] {
  const out: HTMLElement[] = []
  let i = 0
  while (i < lines.length) {
    const line = lines[i]
    if (!line.trim()) {
      i++
      continue
    }
    if (FENCE.test(line)) {
      const code: string[] = []
      i++
      while (i < lines.length && !FENCE.test(lines[i])) code.push(lines[i++])
      i++
      out.push(h('pre', null, h('code', null, code.join('\n'))))
      continue
    }
    const heading = HEADING.exec(line)
    if (heading) {
      const level = Math.min(6, heading[1].length + 2)
      out.push(h(`h${level}` as 'h3', null, inline(heading[2])))
      i++
      continue
    }
    if (RULE.test(line)) {
      out.push(h('hr'))
      i++
      continue
    }
    if (QUOTE.test(line)) {
      const quoted: string[] = []
      while (i < lines.length && QUOTE.test(lines[i])) quoted.push(QUOTE.exec(lines[i++])![1])
      out.push(h('blockquote', null, blocks(quoted)))
      continue
    }
    const item = ITEM.exec(line)
    if (item) {
      const ordered = /\d/.test(item[1])
      const items: string[] = []
      while (i < lines.length && lines[i].trim()) {
        const next = ITEM.exec(lines[i])
        if (next && /\d/.test(next[1]) === ordered) items.push(next[2])
        else if (!next && !startsBlock(lines[i]) && items.length) items[items.length - 1] += ` ${lines[i].trim()}`
        else break
        i++
      }
      const start = ordered ? Number.parseInt(item[1], 10) : 1
      out.push(h(ordered ? 'ol' : 'ul', ordered && start !== 1 ? { start } : null, items.map((text) => h('li', null, inline(text)))))
      continue
    }
    const paragraph: string[] = []
    while (i < lines.length && lines[i].trim() && (!paragraph.length || !startsBlock(lines[i]))) paragraph.push(lines[i++].trim())
    out.push(h('p', null, inline(paragraph.join(' '))))
  }
  return out
}

const INLINE = /(`+)([^`]|[^`][\s\S]*?[^`])\1(?!`)|\*\*(?=\S)([\s\S]*?\S)\*\*|(?<![\p{L}\p{N}])__(?=\S)([\s\S]*?\S)__(?![\p{L}\p{N}])|\*(?=[^\s*])([^*]*?[^\s*])\*|(?<![\p{L}\p{N}_])_(?=[^\s_])([^_]*?[^\s_])_(?![\p{L}\p{N}_])|\[([^\]]+)\]\(\s*([^)\s]+)\s*\)/gu

/** The inline nodes of one block's text. */
function inline(text: string): Node[] {
  const nodes: Node[] = []
  let last = 0
  for (const match of text.matchAll(INLINE)) {
    const at = match.index ?? 0
    if (at > last) nodes.push(document.createTextNode(text.slice(last, at)))
    const [whole, , code, strong, strongUnder, em, emUnder, label, url] = match
    if (code !== undefined) nodes.push(h('code', null, code))
    else if (strong !== undefined || strongUnder !== undefined) nodes.push(h('strong', null, inline(strong ?? strongUnder)))
    else if (em !== undefined || emUnder !== undefined) nodes.push(h('em', null, inline(em ?? emUnder)))
    else if (label !== undefined) {
      const href = safeUrl(url)
      nodes.push(href ? h('a', { href, rel: 'noopener noreferrer', target: '_blank' }, inline(label)) : document.createTextNode(whole))
    }
    last = at + whole.length
  }
  if (last < text.length) nodes.push(document.createTextNode(text.slice(last)))
  return nodes
}

/** The absolute address of a link if it is http(s) or mailto, else null (no `javascript:`, `data:`…). */
export function safeUrl(raw: string): string | null {
  try {
    const url = new URL(raw, location.href)
    return ['http:', 'https:', 'mailto:'].includes(url.protocol) ? url.href : null
  } catch {
    return null
  }
}
