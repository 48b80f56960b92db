// Helpers for the end-to-end scenarios: one browser, a context (a person)
// per token, waits that poll what the page shows (never sleeps), and
// screenshots into E2E_ARTIFACTS.

import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { chromium } from 'playwright-core'

export const TIMEOUT = Number(process.env.E2E_TIMEOUT ?? 15_000)

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  })
}

/** A person: their own browser context and page, signed in through the invite link. */
export async function person(env, token, { width = 1280, height = 860, hash = null } = {}) {
  const context = await env.browser.newContext({ viewport: { width, height } })
  const page = await context.newPage()
  page.on('pageerror', (error) => env.log(`page error: ${error.message}`))
  page.on('console', (message) => {
    if (message.type() === 'error' && !/WebSocket|Failed to load resource/.test(message.text())) env.log(`console: ${message.text()}`)
  })
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

export async function shot(env, page, name) {
  mkdirSync(env.artifacts, { recursive: true })
  const path = join(env.artifacts, `${name}.png`)
  await page.screenshot({ path, fullPage: true })
  env.shots.push(path)
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
