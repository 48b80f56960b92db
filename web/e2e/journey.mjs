// The whole project in the browser (registered in scenarios.mjs; its own
// file for length): a server operator starts a room from the server page,
// sets up a single-choice project, imports a CSV file through the file
// picker, invites two workers and a moderator and opens their links in
// browsers of their own; the workers answer until every task is decided;
// the moderator rejects an answer by keyboard alone, the worker disputes
// it, the moderator upholds it; the owner pays, with the pay floor's
// top-ups, and the payout CSV and the JSONL export downloaded from the
// pages are checked against the server's REST answers.

import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { api, go, person, shot, synced, tabTo, until, watchConsole, TIMEOUT } from './lib.mjs'

/** What the tasks say, and the answer both workers give. */
const TASKS = [['j1', 'Rain all day in the hills.', 'yes'], ['j2', 'The bank opens at nine.', 'no'], ['j3', 'Snow closed the pass.', 'yes']]

/** Micro-units as the web client shows them (format.ts `money`). */
function units(micros) {
  const cents = Math.round(micros / 10_000)
  return `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, '0')}`
}

/** Answers tasks in `page` until the queue has none left for this worker; returns how many. */
async function answerAll(env, page, owner, room) {
  let answered = 0
  for (;;) {
    await synced(page, 'live')
    await page.getByRole('button', { name: 'Get a task' }).click()
    const got = await until('a task or none', async () => {
      if (await page.locator('.reservation').count()) return 'task'
      if (await page.getByText('No task is waiting for you right now.').count()) return 'none'
      return null
    })
    if (got === 'none') return answered
    await synced(page, 'doc')
    const taskId = Number(await page.locator('.reservation').getAttribute('data-task'))
    const { task } = await api(env, owner, 'GET', `/rooms/${room}/tasks/${taskId}`)
    const choice = TASKS.find(([id]) => id === task.external_id)[2]
    await page.getByRole('radio', { name: choice }).check()
    // Reading the sentence takes a moment: the pay floor counts it.
    await new Promise((resolve) => setTimeout(resolve, 1000))
    await page.getByRole('button', { name: 'Submit answer' }).click()
    await page.locator('.empty-task').waitFor({ timeout: TIMEOUT })
    answered += 1
  }
}

/** Invites `user` with `role` on the People page open in `page`; returns the invite link read off the page. */
async function invite(page, user, name, role) {
  await page.getByLabel('User id').fill(user)
  await page.getByLabel('Display name').fill(name)
  await page.getByLabel('Role', { exact: true }).selectOption(role)
  const box = page.locator('#invite-link')
  const before = (await box.count()) ? await box.inputValue() : ''
  await page.getByRole('button', { name: 'Invite' }).click()
  return until(`the invite link of ${user}`, async () => {
    const link = (await box.count()) ? await box.inputValue() : ''
    return link && link !== before ? link : null
  })
}

export async function journey(env) {
  const id = `${env.room}-run`
  // The operator starts the room from the server page: it owns the room.
  const opsContext = await env.browser.newContext({ viewport: { width: 1280, height: 860 } })
  const ops = await opsContext.newPage()
  env.people.operator = { context: opsContext, page: ops }
  watchConsole(env, ops)
  await ops.goto(`${env.base}/#/join/${env.tokens.operator}`)
  await ops.waitForURL(/#\/server$/, { timeout: TIMEOUT })
  await ops.getByLabel('Room id', { exact: false }).fill(id)
  await ops.getByLabel('Name', { exact: true }).fill('E2E whole project')
  await ops.getByRole('button', { name: 'Create room' }).click()
  await ops.waitForURL(new RegExp(`#/project/${id}$`), { timeout: TIMEOUT })
  const owner = await ops.evaluate((room) => JSON.parse(sessionStorage.getItem('crowdroom.keyring') ?? '[]').find((entry) => entry.room === room), id)
  assert.equal(owner.role, 'owner')

  // The project: single choice, paid 0.05 an answer against a target of 36,000.00 an hour.
  await ops.locator('#project-instructions').fill('Is the sentence about the **weather**?')
  await ops.locator('#project-answer_schema').selectOption('single_choice')
  await ops.locator('#label-1-name').fill('yes')
  await ops.locator('#project-add-label').click()
  await ops.locator('#label-2-name').fill('no')
  for (const [field, value] of [['overlap_min', '2'], ['overlap_max', '2'], ['min_confidence', '0.5'], ['gold_rate', '0'], ['onboarding_gold', '0'],
    ['min_lead_time_ms', '0'], ['pay_per_answer', '0.05'], ['target_hourly_rate', '36000']]) {
    await ops.locator(`#project-${field}`).fill(value)
  }
  await ops.locator('#project-save').click()
  await until('the project saved', async () => (await ops.locator('#project-status').innerText()) === 'Project saved.')
  const project = await api(env, owner.token, 'GET', `/rooms/${id}/project`)
  assert.deepEqual(project.answer_schema, { kind: 'single_choice', options: ['yes', 'no'] })
  assert.deepEqual([project.overlap_min, project.overlap_max, project.pay_per_answer, project.target_hourly_rate], [2, 2, 50_000, 36_000_000_000])

  // Tasks from a CSV file chosen with the file picker.
  await go(ops, `#/import/${id}`)
  await ops.getByRole('heading', { name: 'Import tasks' }).waitFor({ timeout: TIMEOUT })
  const csv = ['id,text', ...TASKS.map(([task, text]) => `${task},${text}`)].join('\n') + '\n'
  await ops.getByLabel(/Choose a file of tasks/).setInputFiles({ name: 'tasks.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) })
  await ops.getByRole('heading', { name: 'Report' }).waitFor({ timeout: TIMEOUT })
  assert.equal(await ops.locator('[data-report="inserted"] dd').innerText(), '3')

  // Two workers and a moderator, invited on the People page, each opening their link.
  await go(ops, `#/people/${id}`)
  await ops.getByRole('heading', { name: 'People' }).waitFor({ timeout: TIMEOUT })
  const links = {}
  for (const [user, name, role] of [['ann', 'Ann (worker)', 'worker'], ['ben', 'Ben (worker)', 'worker'], ['mia', 'Mia (moderator)', 'moderator']]) {
    links[user] = await invite(ops, user, name, role)
  }
  const token = (link) => link.split('/').pop()
  const ann = (env.people.ann = await person(env, token(links.ann)))
  const ben = (env.people.ben = await person(env, token(links.ben)))
  const mia = (env.people.mia = await person(env, token(links.mia)))

  // The workers answer until every task is decided.
  const [byAnn, byBen] = await Promise.all([answerAll(env, ann.page, owner.token, id), answerAll(env, ben.page, owner.token, id)])
  assert.deepEqual([byAnn, byBen], [3, 3], 'each task is answered by both (overlap 2)')
  await until('every task decided', async () => (await api(env, owner.token, 'GET', `/rooms/${id}/tasks?state=complete`)).tasks.length === 3)
  await shot(env, ann.page, '15a-journey-worker')

  // The moderator rejects one of Ann's answers by keyboard alone.
  const annEntries = (await api(env, owner.token, 'GET', `/rooms/${id}/ledger?worker=ann`)).entries
  const rejected = annEntries[0].id
  await go(mia.page, `#/pay/${id}`)
  await mia.page.getByRole('heading', { name: 'Pending (6)' }).waitFor({ timeout: TIMEOUT })
  await mia.page.evaluate(() => document.activeElement?.blur())
  const label = `Entry ${rejected} of ann`
  await tabTo(mia.page, label, `document.activeElement?.getAttribute('aria-label') === ${JSON.stringify(label)}`, { limit: 60 })
  await mia.page.keyboard.press('Space')
  await tabTo(mia.page, 'the reason', `document.activeElement?.id === 'pay-reject-reason'`, { limit: 60 })
  const why = 'The bank opening is not weather.'
  await mia.page.keyboard.type(why)
  await tabTo(mia.page, 'Reject selected', `document.activeElement?.textContent === 'Reject selected'`)
  await mia.page.keyboard.press('Enter')
  await mia.page.getByRole('heading', { name: 'Pending (5)' }).waitFor({ timeout: TIMEOUT })
  assert.equal((await api(env, owner.token, 'GET', `/rooms/${id}/ledger/${rejected}`)).entry.state_reason, why)

  // Ann reads the reason and disputes; the moderator upholds; Ann's entry is approved.
  await go(ann.page, `#/earnings/${id}`)
  const row = ann.page.locator(`tr[data-entry="${rejected}"]`)
  await until('the rejection and its reason', async () => (await row.count()) === 1 && (await row.innerText()).includes(why))
  await row.getByRole('button', { name: 'Dispute' }).click()
  await ann.page.getByLabel(`Why should entry ${rejected} not be rejected?`, { exact: false }).fill('It opens after the storm: I read it as weather news.')
  await ann.page.getByRole('button', { name: 'Send dispute' }).click()
  await until('disputed', async () => (await row.getAttribute('data-state')) === 'disputed')
  await mia.page.reload()
  await mia.page.getByRole('heading', { name: 'Disputes (1)' }).waitFor({ timeout: TIMEOUT })
  await mia.page.locator(`#pay-decide-${rejected}`).fill('Fair reading: upheld.')
  await mia.page.getByRole('button', { name: 'Uphold' }).click()
  await mia.page.getByRole('heading', { name: 'Disputes (0)' }).waitFor({ timeout: TIMEOUT })
  await ann.page.reload()
  await until('Ann’s entry approved', async () => (await row.getAttribute('data-state')) === 'approved')

  // The owner approves the rest and pays: the floor tops both workers up.
  await go(ops, `#/pay/${id}`)
  await ops.getByRole('heading', { name: 'Pending (5)' }).waitFor({ timeout: TIMEOUT })
  await ops.locator('#pay-all').check()
  await ops.getByRole('button', { name: 'Approve selected' }).click()
  await ops.getByRole('heading', { name: 'Approved, to pay (6)' }).waitFor({ timeout: TIMEOUT })
  // The floor counts work up to two seconds before a payout (store/floor.rs).
  await new Promise((resolve) => setTimeout(resolve, 2100))
  await ops.getByRole('button', { name: 'Pay all approved' }).click()
  const payout = ops.getByRole('link', { name: /Download the payout CSV/ })
  await payout.waitFor({ timeout: TIMEOUT })
  const [csvDownload] = await Promise.all([ops.waitForEvent('download'), payout.click()])
  const lines = readFileSync(await csvDownload.path(), 'utf8').trim().split('\n')
  const paid = (await api(env, owner.token, 'GET', `/rooms/${id}/ledger?state=paid`)).entries
  const expected = ['ann', 'ben'].map((worker) => {
    const mine = paid.filter((entry) => entry.worker === worker)
    const topUp = mine.filter((entry) => entry.kind === 'topup').reduce((sum, entry) => sum + entry.amount, 0)
    const total = mine.reduce((sum, entry) => sum + entry.amount, 0)
    assert.ok(topUp > 0, `${worker} was paid below the floor: ${JSON.stringify(mine)}`)
    return `${worker},${mine.length},${total},${units(total)},${topUp},${units(topUp)}`
  })
  assert.deepEqual(lines, ['worker,entries,amount_micros,amount,top_up_micros,top_up', ...expected])
  await shot(env, ops, '15b-journey-paid')

  // The JSONL export, downloaded from the import page, is the server's tasks and decisions.
  await go(ops, `#/import/${id}`)
  const [exported] = await Promise.all([ops.waitForEvent('download'), ops.getByRole('button', { name: 'Download JSONL' }).click()])
  const rows = readFileSync(await exported.path(), 'utf8').trim().split('\n').map((line) => JSON.parse(line))
  const { tasks } = await api(env, owner.token, 'GET', `/rooms/${id}/tasks`)
  assert.deepEqual(rows.map((line) => [line.external_id, line.consensus]).sort(), tasks.map((task) => [task.external_id, task.consensus]).sort())
  assert.deepEqual(rows.map((line) => line.consensus).sort(), ['no', 'yes', 'yes'])

  // Ann sees her top-up, paid, on her Earnings page.
  await ann.page.reload()
  const topUp = paid.find((entry) => entry.worker === 'ann' && entry.kind === 'topup')
  const topRow = ann.page.locator(`tr[data-entry="${topUp.id}"]`)
  await until('the top-up on Ann’s page', async () => (await topRow.count()) === 1 && (await topRow.getAttribute('data-state')) === 'paid')
  assert.match(await topRow.innerText(), /Pay floor top-up/)
  await shot(env, ann.page, '15c-journey-earnings')

  // The operator's server page lists this room and the rooms it holds no token for.
  await go(ops, '#/server')
  await until('the rooms listed', async () => (await ops.locator(`tr[data-room="${id}"]`).count()) === 1 && (await ops.locator(`tr[data-room="${env.room}"]`).count()) === 1)
  for (const who of ['ann', 'ben', 'mia', 'operator']) {
    await env.people[who].context.close()
    delete env.people[who]
  }
}
