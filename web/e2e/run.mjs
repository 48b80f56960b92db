// Runs every end-to-end scenario in real Chromium against a real server and
// exits non-zero if any failed. Input (env):
//   E2E_SERVER     the crowdroom server, e.g. http://127.0.0.1:8080
//   E2E_ROOM       the provisioned room
//   E2E_TOKENS     JSON {owner, moderator, core1, core2, worker1, worker2}
//                  (see e2e/provision.mjs; the Rust test tests/it/browser.rs
//                  provisions them)
//   E2E_ARTIFACTS  where screenshots go (default: a temp dir)
//   E2E_ONLY       optional: a comma-separated subset of scenario names
//   E2E_AXE_TAGS   optional: the axe-core rule tags (default wcag2a,wcag2aa)
//   E2E_AXE_VERBOSE  optional: also list the nodes axe could not decide on
// Every screenshot is also checked with axe-core (lib.mjs `checkA11y`): a
// serious or critical violation on any page fails the run, with the rule,
// its impact and the nodes' selectors; moderate and minor ones are listed.
// The page is loaded from the server itself when it serves web/dist (the
// copy embedded when it was built); a server without that, or
// E2E_PAGE=preview, gets a Vite preview of web/dist proxying to it.

import { existsSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { AXE_TAGS, a11yFailures, api, launch } from './lib.mjs'
import { SCENARIOS } from './scenarios.mjs'

const webDir = join(dirname(fileURLToPath(import.meta.url)), '..')

function fail(message) {
  console.error(`e2e: ${message}`)
  process.exit(2)
}

const server = (process.env.E2E_SERVER ?? '').replace(/\/$/, '')
const room = process.env.E2E_ROOM
let tokens
try {
  tokens = JSON.parse(process.env.E2E_TOKENS ?? '')
} catch {
  fail('E2E_TOKENS must be JSON {owner, moderator, core1, core2, worker1, worker2}')
}
if (!server || !room) fail('E2E_SERVER and E2E_ROOM are required')
for (const key of ['owner', 'moderator', 'core1', 'core2', 'worker1', 'worker2']) if (!tokens[key]) fail(`E2E_TOKENS lacks ${key}`)

/** The server when it serves the app, else a Vite preview of dist/ proxying to it. */
async function pageBase() {
  const index = await fetch(`${server}/`).then((response) => (response.ok ? response.text() : ''), () => '')
  if (index.includes('<div id="app">') && process.env.E2E_PAGE !== 'preview') return { base: server, close: async () => undefined }
  if (!existsSync(join(webDir, 'dist/index.html'))) fail('web/dist is missing: run `npm run build --prefix web`')
  const { preview } = await import('vite')
  // Sockets the server closes (kick, ban, offline) make the proxy log EPIPE: expected here.
  const quiet = (proxy) => proxy.on('error', () => undefined)
  const proxy = {
    '/api': { target: server, changeOrigin: true, configure: quiet },
    '/yjs': { target: server, ws: true, changeOrigin: true, configure: quiet },
    '/rooms': { target: server, ws: true, changeOrigin: true, configure: quiet },
  }
  const previewServer = await preview({ root: webDir, logLevel: 'silent', preview: { host: '127.0.0.1', port: 0, strictPort: false, proxy } })
  const address = previewServer.httpServer.address()
  return { base: `http://127.0.0.1:${address.port}`, close: () => previewServer.close() }
}

const started = Date.now()
const { base, close } = await pageBase()
const browser = await launch()
const env = {
  browser,
  base,
  server,
  room,
  tokens,
  artifacts: process.env.E2E_ARTIFACTS ?? mkdtempSync(join(tmpdir(), 'crowdroom-e2e-')),
  shots: [],
  people: {},
  log: (line) => console.log(`    ${line}`),
  consoleErrors: [],
}
const tasks = (await api(env, tokens.owner, 'GET', `/rooms/${room}/tasks?limit=1000`)).tasks
env.tasks = Object.fromEntries(tasks.map((task) => [task.external_id, task]))
console.log(`e2e: page at ${base}, server ${server}, room ${room}, ${tasks.length} tasks, artifacts in ${env.artifacts}`)

const results = []
const only = process.env.E2E_ONLY ? new Set(process.env.E2E_ONLY.split(',')) : null
for (const scenario of SCENARIOS) {
  if (only && !only.has(scenario.name)) continue
  const start = Date.now()
  try {
    await scenario.run(env)
    results.push({ name: scenario.name, ok: true, ms: Date.now() - start })
    console.log(`ok   ${scenario.name} (${Date.now() - start} ms)`)
  } catch (error) {
    results.push({ name: scenario.name, ok: false, ms: Date.now() - start, error })
    console.log(`FAIL ${scenario.name} (${Date.now() - start} ms): ${error.stack ?? error}`)
    for (const [who, { page }] of Object.entries(env.people)) {
      await page.screenshot({ path: join(env.artifacts, `fail-${scenario.name}-${who}.png`), fullPage: true }).catch(() => undefined)
    }
  }
}
await browser.close()
await close()

// Accessibility: every screenshot was checked with axe-core (lib.mjs `checkA11y`);
// a serious or critical violation on any page fails the run.
const a11y = a11yFailures(env)
const checked = env.a11y?.length ?? 0
if (checked) {
  if (a11y.length) {
    results.push({ name: 'a11y', ok: false, error: new Error(`${a11y.length} serious/critical axe violation(s)`) })
    console.log(`FAIL a11y: serious/critical violations (axe-core, ${AXE_TAGS.join(', ')}) on ${checked} checked pages:\n${a11y.map((line) => `  ${line}`).join('\n')}`)
  } else {
    results.push({ name: 'a11y', ok: true })
    console.log(`ok   a11y (axe-core, ${AXE_TAGS.join(', ')}: no serious or critical violation on ${checked} checked pages)`)
  }
}

// No page may log a console error (lib.mjs `watchConsole` says which count).
if (env.consoleErrors.length) {
  results.push({ name: 'console', ok: false, error: new Error(`${env.consoleErrors.length} console error(s)`) })
  console.log(`FAIL console errors:\n${env.consoleErrors.map((line) => `  ${line}`).join('\n')}`)
} else {
  results.push({ name: 'console', ok: true })
  console.log('ok   console (no console error on any page)')
}

const failed = results.filter((result) => !result.ok)
console.log(`\nscreenshots:\n${env.shots.map((path) => `  ${path}`).join('\n')}`)
console.log(`\n${results.length - failed.length} passed, ${failed.length} failed (${((Date.now() - started) / 1000).toFixed(1)} s)`)
if (failed.length) {
  for (const result of failed) console.log(`  FAILED ${result.name}: ${result.error?.message ?? result.error}`)
  process.exit(1)
}
