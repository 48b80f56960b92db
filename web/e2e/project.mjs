// The project page scenario (registered in scenarios.mjs; its own file for
// length): an owner creates a room and fills its project by keyboard alone,
// meets the server's refusal next to its field, saves, edits with the
// preview of what the change does to imported tasks, and a worker answers
// by the label's hotkey.

import assert from 'node:assert/strict'
import { api, go, person, shot, synced, tabTo, until, TIMEOUT } from './lib.mjs'

/** Console errors of `page` (WebSocket noise and the 4xx the scenario provokes on purpose, which Chromium logs as failed loads, excepted, as lib.mjs does). */
function consoleErrors(page) {
  const errors = []
  page.on('pageerror', (error) => errors.push(error.message))
  page.on('console', (message) => {
    if (message.type() === 'error' && !/WebSocket|Failed to load resource/.test(message.text())) errors.push(message.text())
  })
  return errors
}

/** Tabs forward to the element `#id` (tabTo evaluates a string as an expression in the page). */
async function tabToId(page, id) {
  await tabTo(page, `#${id}`, `document.activeElement?.id === ${JSON.stringify(id)}`, { limit: 60 })
}

/** Tabs forward to the element `#id`, selects what it holds and types `text` over it. */
async function typeAt(page, id, text) {
  await tabToId(page, id)
  await page.keyboard.press('Control+A')
  await page.keyboard.type(text)
}

export async function projectPage(env) {
  const id = `${env.room}-form`
  const planner = (env.people.planner = await person(env, env.tokens.owner, { hash: '#/' }))
  const { page } = planner
  const errors = consoleErrors(page)
  await page.getByRole('heading', { name: 'Create a room' }).waitFor({ timeout: TIMEOUT })

  // Create the room by keyboard: Tab to the id, type, Tab, type the name, Enter.
  await page.evaluate(() => document.activeElement?.blur())
  await typeAt(page, 'new-room-id', id)
  await page.keyboard.press('Tab')
  await page.keyboard.type('E2E project form')
  await page.keyboard.press('Enter')
  await page.waitForURL(new RegExp(`#/project/${id}$`), { timeout: TIMEOUT })
  await page.getByRole('heading', { name: 'Project', exact: true }).waitFor({ timeout: TIMEOUT })
  const keyring = await page.evaluate(() => JSON.parse(sessionStorage.getItem('crowdroom.keyring') ?? '[]'))
  const owner = keyring.find((entry) => entry.room === id)
  assert.ok(owner && owner.role === 'owner', 'the new room’s owner token is in the keyring')
  assert.equal(await page.getByRole('link', { name: 'Project' }).getAttribute('aria-current'), 'page')

  // The instructions, with Markdown previewed and raw HTML kept as text.
  const instructions = '# Weather\nIs the sentence about **the weather**? <b>not bold</b>\n\n- say *yes* or no'
  await page.locator('#project-instructions').waitFor({ timeout: TIMEOUT })
  await typeAt(page, 'project-instructions', instructions)
  const preview = page.locator('#instructions-preview')
  await until('the Markdown preview', async () => (await preview.locator('h3').innerText()) === 'Weather')
  assert.equal(await preview.locator('strong').innerText(), 'the weather')
  assert.equal(await preview.locator('b').count(), 0, 'no raw HTML reaches the DOM')
  assert.match(await preview.innerText(), /<b>not bold<\/b>/)
  assert.equal(await preview.locator('li em').innerText(), 'yes')

  // Single choice, chosen by typing its first letter in the kind's select.
  await page.keyboard.press('Tab')
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'project-answer_schema')
  await page.keyboard.press('s')
  await until('single choice chosen', async () => (await page.locator('#project-answer_schema').inputValue()) === 'single_choice')
  // Two options, each with a colour and a hotkey; the second row by “Add a label”.
  await typeAt(page, 'label-1-name', 'yes')
  await page.keyboard.press('Tab')
  await page.keyboard.type('#2f9e44')
  await page.keyboard.press('Tab')
  await page.keyboard.type('y')
  await tabToId(page, 'project-add-label')
  await page.keyboard.press('Enter')
  await until('a second label row, focused', async () => page.evaluate(() => document.activeElement?.id === 'label-2-name'))
  await page.keyboard.type('no')
  await page.keyboard.press('Tab')
  await page.keyboard.type('#c92a2a')
  await page.keyboard.press('Tab')
  await page.keyboard.type('n')
  // Overlap minimum above the maximum: the server refuses it.
  await typeAt(page, 'project-overlap_min', '4')
  await typeAt(page, 'project-overlap_max', '2')
  await typeAt(page, 'project-gold_rate', '0')
  await typeAt(page, 'project-onboarding_gold', '0')
  await typeAt(page, 'project-min_lead_time_ms', '0')
  await typeAt(page, 'project-pay_per_answer', '0.25')
  await tabToId(page, 'project-save')
  await page.keyboard.press('Space')
  const problem = page.locator('#project-overlap_min-error')
  await until('the server’s message next to overlap_min', async () => (await problem.isVisible()) && /overlap_max/.test(await problem.innerText()))
  const field = page.locator('#project-overlap_min')
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'project-overlap_min', 'the focus is on the field at fault')
  assert.equal(await field.getAttribute('aria-invalid'), 'true')
  assert.ok((await field.getAttribute('aria-describedby')).split(' ').includes('project-overlap_min-error'))
  await shot(env, page, '14a-project-refused')

  // Fixed where the focus is, then saved (the room has no task: nothing to confirm).
  await page.keyboard.press('Control+A')
  await page.keyboard.type('1')
  await tabToId(page, 'project-save')
  await page.keyboard.press('Enter')
  await until('saved', async () => (await page.locator('#project-status').innerText()) === 'Project saved.')
  assert.equal(await field.getAttribute('aria-invalid'), null, 'the error is gone')
  const stored = await api(env, owner.token, 'GET', `/rooms/${id}/project`)
  assert.equal(stored.instructions, instructions)
  assert.deepEqual(stored.answer_schema, { kind: 'single_choice', options: ['yes', 'no'] })
  assert.deepEqual(stored.label_styles, { yes: { colour: '#2f9e44', hotkey: 'y' }, no: { colour: '#c92a2a', hotkey: 'n' } })
  assert.deepEqual([stored.overlap_min, stored.overlap_max, stored.gold_rate, stored.onboarding_gold, stored.min_lead_time_ms], [1, 2, 0, 0, 0])
  assert.equal(stored.pay_per_answer, 250000)

  // Tasks imported over REST, then an edit: its preview says what happens to them, and is confirmed.
  const tasks = [['w1', 'Rain all day.'], ['w2', 'The bank opens at nine.'], ['w3', 'Fog on the coast.']].map(([task, text]) => ({ id: task, data: { text } }))
  assert.equal((await api(env, owner.token, 'POST', `/rooms/${id}/tasks`, tasks)).inserted, 3)
  await typeAt(page, 'project-overlap_max', '1')
  await tabToId(page, 'project-save')
  await page.keyboard.press('Enter')
  const title = page.getByRole('heading', { name: 'What this changes for tasks already imported' })
  await title.waitFor({ timeout: TIMEOUT })
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'change-title', 'the focus moves to the preview')
  assert.match(await page.locator('[data-effect="changed"]').innerText(), /Overlap: maximum answers/)
  assert.match(await page.locator('[data-effect="tasks"]').innerText(), /3 tasks: 3 open/)
  assert.match(await page.locator('[data-effect="overlap_capped"]').innerText(), /^3 tasks open now go to review/)
  assert.equal((await api(env, owner.token, 'GET', `/rooms/${id}/project`)).overlap_max, 2, 'nothing saved before the confirmation')
  await shot(env, page, '14b-project-preview')
  await page.keyboard.press('Tab')
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'confirm-save')
  await page.keyboard.press('Enter')
  await until('saved again', async () => (await page.locator('#project-status').innerText()) === 'Project saved.')
  assert.equal((await api(env, owner.token, 'GET', `/rooms/${id}/project`)).overlap_max, 1)
  await page.setViewportSize({ width: 768, height: 1000 })
  await shot(env, page, '14c-project-768')

  // A worker answers by the option's hotkey (not while typing in the chat).
  const worker = (await api(env, owner.token, 'POST', `/rooms/${id}/tokens`, { user: 'wren', role: 'worker', display_name: 'Wren (worker)' })).token
  const w = (env.people.hotkeys = await person(env, worker))
  const workerErrors = consoleErrors(w.page)
  await synced(w.page, 'live')
  await until('the instructions rendered for the worker', async () => (await w.page.locator('.instructions h3').innerText()) === 'Weather')
  await w.page.evaluate(() => document.activeElement?.blur())
  await tabToId(w.page, 'get-task')
  await w.page.keyboard.press('Enter')
  const reservation = w.page.locator('.reservation')
  await reservation.waitFor({ timeout: TIMEOUT })
  await synced(w.page, 'doc')
  const taskId = Number(await reservation.getAttribute('data-task'))
  const no = w.page.getByRole('radio', { name: /no/ })
  assert.equal(await w.page.locator('.choice[data-option="no"] kbd.hotkey').innerText(), 'n', 'the hotkey is shown on the option')
  assert.equal(await no.getAttribute('aria-keyshortcuts'), '2 n')
  await w.page.keyboard.press('n')
  await until('“no” picked by its hotkey', () => no.isChecked())
  await w.page.getByLabel('Message', { exact: true }).focus()
  await w.page.keyboard.press('y')
  assert.equal(await w.page.getByLabel('Message', { exact: true }).inputValue(), 'y', 'typed in the chat')
  assert.ok(await no.isChecked(), 'a hotkey typed in the chat picks nothing')
  await w.page.getByLabel('Message', { exact: true }).fill('')
  await shot(env, w.page, '14d-hotkey-answer')
  await tabToId(w.page, 'submit-answer')
  await w.page.keyboard.press('Enter')
  await w.page.locator('.empty-task').waitFor({ timeout: TIMEOUT })
  const { answers } = await api(env, owner.token, 'GET', `/rooms/${id}/tasks/${taskId}`)
  assert.deepEqual(answers.map((answer) => [answer.worker, answer.answer]), [['wren', 'no']])
  assert.deepEqual(errors, [], 'no console error on the project page')
  assert.deepEqual(workerErrors, [], 'no console error on the worker’s page')
  await w.context.close()
  delete env.people.hotkeys
  await planner.context.close()
  delete env.people.planner
}
