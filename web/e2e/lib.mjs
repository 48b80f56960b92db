// Helpers for the end-to-end scenarios: one browser, a context (a person)
// per token, waits that poll what the page shows (never sleeps),
// screenshots into E2E_ARTIFACTS, each with an axe-core accessibility check
// of the page as shown, and keyboard-only navigation.

import { mkdirSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { chromium } from 'playwright-core'

// The page's Content-Security-Policy (default-src 'self', set by the server)
// refuses inline scripts, so `page.addScriptTag` cannot inject axe there;
// evaluating its source through the DevTools protocol is not subject to the
// page's CSP, and the policy stays in force for the app under test.
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8')
/** Impacts that fail the run; moderate and minor ones are only reported. */
const BLOCKING = new Set(['serious', 'critical'])
/** The axe rule tags to run: WCAG 2.0 and 2.1, A and AA; E2E_AXE_TAGS (comma-separated, e.g. adding best-practice or wcag22aa) widens it. */
export const AXE_TAGS = process.env.E2E_AXE_TAGS ? process.env.E2E_AXE_TAGS.split(',') : ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']

export const TIMEOUT = Number(process.env.E2E_TIMEOUT ?? 15_000)

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  })
}

/** A person: their own browser context and page, signed in through the invite link. */
/**
 * Records every console error and uncaught exception of `page` in
 * `env.consoleErrors`, which fails the run (run.mjs). Not counted: a
 * WebSocket's (the offline and kick scenarios cut sockets on purpose) and
 * a refused API request, which the page shows (Chromium logs each 4xx as a
 * failed load); any other failed load, a missing favicon or asset, counts.
 */
export function watchConsole(env, page) {
  page.on('pageerror', (error) => env.consoleErrors.push(`${page.url()}: page error: ${error.message}`))
  page.on('console', (message) => {
    if (message.type() !== 'error' || /WebSocket/.test(message.text())) return
    const from = message.location()?.url ?? ''
    if (/Failed to load resource/.test(message.text()) && /\/api\/v1\//.test(from)) return
    env.consoleErrors.push(`${page.url()}: ${message.text()} (${from})`)
  })
}

export async function person(env, token, { width = 1280, height = 860, hash = null } = {}) {
  const context = await env.browser.newContext({ viewport: { width, height } })
  const page = await context.newPage()
  watchConsole(env, page)
  await page.goto(`${env.base}/#/join/${token}`)
  await page.waitForURL(/#\/room\//, { timeout: TIMEOUT })
  if (page.url().includes(token)) throw new Error('the invite token stayed in the address bar')
  if (hash) await go(page, hash)
  return { context, page }
}

export async function go(page, hash) {
  await page.evaluate((target) => (location.hash = target), hash)
}

/** Polls `check` (which returns a truthy value or throws) until it passes. */
export async function until(what, check, timeout = TIMEOUT) {
  const deadline = Date.now() + timeout
  let last
  for (;;) {
    try {
      const value = await check()
      if (value) return value
      last = new Error('condition false')
    } catch (error) {
      last = error
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${last?.message ?? last}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

export async function state(page, kind) {
  return page.locator(`[data-conn="${kind}"]`).getAttribute('data-state')
}

export async function synced(page, kind) {
  await until(`${kind} synced`, async () => (await state(page, kind)) === 'synced')
}

/** Selects [start, end) in the span surface as a person would (keyboard focus + selection). */
export async function select(page, start, end) {
  await page.evaluate(([from, to]) => {
    const textarea = document.querySelector('.surface-text')
    textarea.focus()
    textarea.setSelectionRange(from, to)
    textarea.dispatchEvent(new Event('select'))
  }, [start, end])
}

/** The spans the page lists, sorted. */
export async function spans(page) {
  const items = await page.locator('.span-item').evaluateAll((nodes) =>
    nodes.map((node) => ({ start: Number(node.dataset.start), end: Number(node.dataset.end), label: node.dataset.label })))
  return items.sort((a, b) => a.start - b.start || a.end - b.end || a.label.localeCompare(b.label))
}

/** A full-page screenshot, then the accessibility check of the same page (see `checkA11y`). */
export async function shot(env, page, name) {
  mkdirSync(env.artifacts, { recursive: true })
  const path = join(env.artifacts, `${name}.png`)
  await page.screenshot({ path, fullPage: true })
  env.shots.push(path)
  await checkA11y(env, page, name)
}

/**
 * Runs axe-core (WCAG 2 A and AA rules) on the page as it is now and records
 * the violations in `env.a11y` under `name`; the runner fails the run if any
 * is serious or critical (`a11yFailures`). Moderate and minor ones are
 * logged only. Scenarios go on after a violation, so one run lists them all.
 */
export async function checkA11y(env, page, name) {
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.evaluate(AXE_SOURCE)
  const { violations, incomplete } = await page.evaluate(async (tags) => {
    const result = await window.axe.run(document, { runOnly: { type: 'tag', values: tags } })
    const brief = (rule) => ({
      id: rule.id,
      impact: rule.impact,
      help: rule.help,
      nodes: rule.nodes.map((node) => ({
        target: node.target.map((part) => (Array.isArray(part) ? part.join(' >>> ') : part)).join(' '),
        why: [...node.any, ...node.all, ...node.none].map((check) => check.message).filter(Boolean)[0] ?? '',
      })),
    })
    return { violations: result.violations.map(brief), incomplete: result.incomplete.map(brief) }
  }, AXE_TAGS)
  const viewport = page.viewportSize()
  const where = `${name} @${viewport?.width ?? '?'}px`
  env.a11y ??= []
  env.a11y.push({ page: where, violations })
  for (const rule of violations) {
    const level = BLOCKING.has(rule.impact) ? 'VIOLATION' : 'note'
    env.log(`axe ${level} ${where}: ${rule.id} (${rule.impact}, ${rule.nodes.length} node${rule.nodes.length === 1 ? '' : 's'}): ${rule.help}`)
    for (const node of rule.nodes.slice(0, 8)) env.log(`      ${node.target}${node.why ? ` — ${node.why}` : ''}`)
    if (rule.nodes.length > 8) env.log(`      … and ${rule.nodes.length - 8} more`)
  }
  // What axe could not decide (e.g. text over the span highlights): listed, never failing; E2E_AXE_VERBOSE=1 shows the nodes.
  if (incomplete.length) env.log(`axe ${where}: needs review by a person (not failing): ${incomplete.map((rule) => `${rule.id}×${rule.nodes.length}`).join(', ')}`)
  if (process.env.E2E_AXE_VERBOSE) for (const rule of incomplete) for (const node of rule.nodes) env.log(`      ${rule.id}: ${node.target}${node.why ? ` — ${node.why}` : ''}`)
  if (!violations.length) env.log(`axe ${where}: no violations (${AXE_TAGS.join(', ')})`)
}

/** The serious and critical axe violations recorded so far, one line per rule and page, with the nodes' selectors. */
export function a11yFailures(env) {
  const lines = []
  for (const { page, violations } of env.a11y ?? []) {
    for (const rule of violations) {
      if (!BLOCKING.has(rule.impact)) continue
      lines.push(`${page}: ${rule.id} [${rule.impact}] ${rule.help}\n${rule.nodes.map((node) => `      ${node.target}${node.why ? ` — ${node.why}` : ''}`).join('\n')}`)
    }
  }
  return lines
}

/** Whether the focused element shows a focus indicator: a visible outline or a box-shadow. */
export async function focusVisible(page) {
  return page.evaluate(() => {
    const element = document.activeElement
    if (!element || element === document.body) return false
    const style = getComputedStyle(element)
    const outline = style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0
    return outline || (style.boxShadow !== 'none' && style.boxShadow !== '')
  })
}

/** Presses Tab (Shift+Tab with `back`) until the focused element matches `matches` (run in the page on it), at most `limit` times. */
export async function tabTo(page, what, matches, { back = false, limit = 40 } = {}) {
  for (let presses = 0; presses <= limit; presses++) {
    if (await page.evaluate(matches)) return presses
    await page.keyboard.press(back ? 'Shift+Tab' : 'Tab')
  }
  const at = await page.evaluate(() => {
    const element = document.activeElement
    return element ? `${element.tagName.toLowerCase()}${element.id ? `#${element.id}` : ''} “${(element.textContent ?? '').trim().slice(0, 40)}”` : 'nothing'
  })
  throw new Error(`Tab did not reach ${what} within ${limit} presses (focus is on ${at})`)
}

export async function api(env, token, method, path, body) {
  const response = await fetch(`${env.server}/api/v1${path}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  })
  const text = await response.text()
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`)
  return text ? JSON.parse(text) : null
}
