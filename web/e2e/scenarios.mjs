// The scenarios, in order; later ones reuse the people earlier ones opened
// (env.people) so the whole run stays well under a minute. Every check is
// on what the page shows.

import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { projectPage } from './project.mjs'
import { journey } from './journey.mjs'
import { api, focusVisible, go, person, select, shot, spans, state, synced, tabTo, until, watchConsole, TIMEOUT } from './lib.mjs'

/** Sign-in by pasting a token, the room list, and the invite-link flow. */
async function signIn(env) {
  const context = await env.browser.newContext({ viewport: { width: 1280, height: 720 } })
  const page = await context.newPage()
  watchConsole(env, page)
  await page.goto(`${env.base}/`)
  await page.getByRole('heading', { name: 'Sign in' }).waitFor({ timeout: TIMEOUT })
  // The icon is inline: the browser never asks the server for /favicon.ico.
  assert.match(await page.locator('link[rel="icon"]').getAttribute('href'), /^data:image\//)
  await shot(env, page, '1-sign-in')
  await page.getByLabel('Token or invite link').fill(`${env.base}/#/join/${env.tokens.owner}`)
  await page.getByRole('button', { name: 'Add' }).click()
  const card = page.locator(`.room-card[data-room="${env.room}"]`)
  await card.waitFor({ timeout: TIMEOUT })
  assert.match(await card.innerText(), /owner/)
  await until('occupancy on the room card', async () => /online/.test(await card.innerText()))
  await shot(env, page, '2-rooms')
  // A bad token is refused with a message, not silently.
  await page.getByLabel('Token or invite link').fill('crt_' + '0'.repeat(64))
  await page.getByRole('button', { name: 'Add' }).click()
  await page.getByRole('alert').filter({ hasText: 'does not work' }).waitFor({ timeout: TIMEOUT })
  await context.close()
}

/** Two core members co-edit the team's document of one task and converge, each seeing the other. */
async function coEdit(env) {
  const task = env.tasks.t1
  const hash = `#/review/${env.room}/${task.id}`
  const a = (env.people.core1 = await person(env, env.tokens.core1, { hash }))
  const b = (env.people.core2 = await person(env, env.tokens.core2, { hash }))
  await Promise.all([synced(a.page, 'doc'), synced(b.page, 'doc')])
  // "Ada Lovelace" [0,12) as PER by key 1 in A; "Charles Babbage" [17,32) by the ORG button in B (wrong on purpose).
  await select(a.page, 0, 11)
  await a.page.keyboard.press('1')
  await select(b.page, 17, 32)
  await b.page.getByRole('button', { name: /ORG/ }).click()
  // Both see both, then A fixes its own span (one right... and back to the selection) and B relabels by re-adding.
  await until('both spans on both pages', async () => (await spans(a.page)).length === 2 && (await spans(b.page)).length === 2)
  await a.page.getByRole('button', { name: /Move “Ada Lovelac” right/ }).click()
  await until('the moved span in B', async () => (await spans(b.page)).some((span) => span.start === 1 && span.end === 12))
  await select(a.page, 0, 12)
  await a.page.getByRole('button', { name: /Set “da Lovelace” to selection/ }).click()
  await b.page.getByRole('button', { name: /Remove “Charles Babbage”/ }).click()
  await select(b.page, 17, 32)
  await b.page.keyboard.press('1')
  await select(b.page, 36, 42)
  await b.page.keyboard.press('3')
  // Both type a note at once.
  await Promise.all([
    a.page.getByLabel('Note').fill('Ada is a person.').then(() => a.page.getByLabel('Note').press('Enter')),
    b.page.getByLabel('Note').fill('London is a place.').then(() => b.page.getByLabel('Note').press('Enter')),
  ])
  const expected = [
    { start: 0, end: 12, label: 'PER' },
    { start: 17, end: 32, label: 'PER' },
    { start: 36, end: 42, label: 'LOC' },
  ]
  await until('identical annotations', async () => {
    const [left, right] = [await spans(a.page), await spans(b.page)]
    assert.deepEqual(left, expected)
    assert.deepEqual(right, expected)
    return true
  })
  for (const page of [a.page, b.page]) {
    await until('both notes', async () => {
      const notes = await page.locator('.comment-list').innerText()
      return notes.includes('Ada is a person.') && notes.includes('London is a place.')
    })
  }
  // Each sees the other's name and caret (awareness).
  await select(a.page, 58, 68)
  await until('A’s caret named in B', async () => (await b.page.locator('.caret[data-name="Cora (core team)"]').count()) > 0)
  await until('A’s selection described in B', async () => /Cora \(core team\) selecting “Analytical”/.test(await b.page.locator('.peers').innerText()))
  await until('B named in A', async () => (await a.page.locator('.peer[data-user="cody"]').count()) > 0)
  await until('B’s caret in A', async () => (await a.page.locator('.caret[data-name="Cody (core team)"]').count()) > 0)
  await shot(env, b.page, '4-review')
}

/** The two core members chat: send, edit and delete show on the other page. */
async function chat(env) {
  const { core1: a, core2: b } = env.people
  const body = `hello from Cora ${Date.now()}`
  await a.page.getByLabel('Message', { exact: true }).fill(body)
  await a.page.getByLabel('Message', { exact: true }).press('Enter')
  const inB = b.page.locator('.msg').filter({ hasText: body })
  await inB.waitFor({ timeout: TIMEOUT })
  // B's screen reader hears the new message (and only it) through the status line; the list itself is not a live region.
  await until('the message announced in B', async () => (await b.page.locator('[data-chat-announcer] > :last-child').innerText()).endsWith(`: ${body}`))
  assert.equal(await b.page.locator('.chat-list[aria-live]').count(), 0, 'the chat list is not a live region')
  assert.equal(await a.page.locator('[data-chat-announcer]').innerText(), '', 'my own message is not announced to me')
  // Incremental: the items already shown are the same elements after a new message, an edit and a deletion.
  const tag = (page) => page.locator('.chat-list').evaluate((list) => {
    for (const item of list.children) item.__kept = true
    return list.children.length
  })
  const kept = (page) => page.locator('.chat-list').evaluate((list) => [...list.children].filter((item) => item.__kept).length)
  const shownInA = await tag(a.page)
  const shownInB = await tag(b.page)
  await b.page.getByLabel('Message', { exact: true }).fill('hi Cora')
  await b.page.getByRole('button', { name: 'Send' }).click()
  await a.page.locator('.msg').filter({ hasText: 'hi Cora' }).waitFor({ timeout: TIMEOUT })
  assert.equal(await kept(a.page), shownInA, 'a new message is appended, the others stay')
  assert.equal(await a.page.locator('.chat-list > :last-child').innerText().then((text) => text.includes('hi Cora')), true, 'appended at the end')
  await until('B’s reply announced in A', async () => (await a.page.locator('[data-chat-announcer] > :last-child').innerText()).endsWith(': hi Cora'))
  const mine = a.page.locator('.msg').filter({ hasText: body })
  await mine.getByRole('button', { name: 'Edit message' }).click()
  await a.page.getByLabel('Edit message').fill(`${body} (edited text)`)
  await a.page.getByLabel('Edit message').press('Enter')
  await until('the edit in B', async () => /\(edited text\)[\s\S]*|\(edited\)/.test(await inB.innerText()) && (await inB.innerText()).includes('(edited text)'))
  assert.match(await inB.innerText(), /\(edited\)/)
  // Cody cannot edit or delete Cora's message.
  assert.equal(await inB.getByRole('button').count(), 0)
  await a.page.locator('.msg').filter({ hasText: '(edited text)' }).getByRole('button', { name: 'Delete message' }).click()
  await until('the deletion in B', async () => (await b.page.locator('.msg').filter({ hasText: 'Message deleted' }).count()) > 0)
  assert.equal(await b.page.locator('.msg').filter({ hasText: '(edited text)' }).count(), 0)
  assert.equal(await kept(b.page), shownInB, 'the edit and the deletion updated the message in place')
  assert.ok((await b.page.locator('[data-chat-announcer]').innerText()).includes(body) && !(await b.page.locator('[data-chat-announcer]').innerText()).includes('(edited text)'), 'edits are not announced')
}

/** A page goes offline, edits, comes back, resyncs; the other page gets the edits. */
async function offline(env) {
  const { core1: a, core2: b } = env.people
  await a.page.evaluate(() => {
    window.__docStates = []
    const node = document.querySelector('[data-conn="doc"]')
    new MutationObserver(() => window.__docStates.push(node.dataset.state)).observe(node, { attributes: true, attributeFilter: ['data-state'] })
  })
  await a.context.setOffline(true)
  await until('offline shown', async () => (await state(a.page, 'doc')) === 'offline' && (await state(a.page, 'live')) === 'offline')
  await select(a.page, 58, 75)
  await a.page.getByRole('button', { name: /ORG/ }).click()
  await a.page.getByLabel('Note').fill('written offline')
  await a.page.getByLabel('Note').press('Enter')
  assert.equal((await spans(a.page)).length, 4, 'the offline edit shows locally')
  await b.page.waitForTimeout(300)
  assert.equal((await spans(b.page)).length, 3, 'the other page cannot have it yet')
  await a.context.setOffline(false)
  await synced(a.page, 'doc')
  await synced(a.page, 'live')
  const history = await a.page.evaluate(() => window.__docStates)
  const offlineAt = history.indexOf('offline')
  const reconnectingAt = history.indexOf('reconnecting', offlineAt)
  const syncedAt = history.indexOf('synced', reconnectingAt)
  assert.ok(offlineAt >= 0 && reconnectingAt > offlineAt && syncedAt > reconnectingAt, `offline -> reconnecting -> synced, got ${history.join(' -> ')}`)
  await until('the offline edits in B', async () => {
    assert.deepEqual(await spans(b.page), await spans(a.page))
    return (await spans(b.page)).some((span) => span.start === 58 && span.end === 75 && span.label === 'ORG')
  })
  await until('the offline note in B', async () => (await b.page.locator('.comment-list').innerText()).includes('written offline'))
}

/** A reviewer submits the team's correction; the server's decision shows live in both pages. */
async function review(env) {
  const { core1: a, core2: b } = env.people
  const expected = (await spans(a.page)).map(({ start, end, label }) => `${label} ${start}–${end}`).join(', ')
  await a.page.getByRole('button', { name: 'Submit correction' }).click()
  for (const page of [a.page, b.page]) {
    await until('the review decision in the shared document', async () => (await page.locator('[data-review-state="corrected"]').count()) === 1)
    await until('the consensus written by the server', async () => (await page.locator('[data-consensus]').innerText()) === expected)
  }
  assert.match(await b.page.locator('[data-review-state]').innerText(), /corrected by cora/)
  await until('the task listed as complete', async () => (await a.page.locator('[data-list="complete"] [data-task]').count()) >= 1)
  await b.page.setViewportSize({ width: 768, height: 1000 })
  await shot(env, b.page, '4b-review-tablet')
}

async function counts(page) {
  return JSON.parse((await page.locator('[data-counts]').getAttribute('data-counts')) ?? 'null')
}

/** A worker takes a task and submits it; the other worker's queue counts follow. */
async function queue(env) {
  const w1 = (env.people.worker1 = await person(env, env.tokens.worker1))
  const w2 = (env.people.worker2 = await person(env, env.tokens.worker2, { width: 768, height: 1000 }))
  await Promise.all([synced(w1.page, 'live'), synced(w2.page, 'live')])
  const before = await until('counts in the other page', () => counts(w2.page))
  await w1.page.getByRole('button', { name: 'Get a task' }).click()
  await w1.page.locator('.reservation').waitFor({ timeout: TIMEOUT })
  assert.match(await w1.page.locator('.reservation').innerText(), /is yours for \d+:\d\d/)
  await until('reserved +1 in the other page', async () => (await counts(w2.page)).reserved === before.reserved + 1)
  await synced(w1.page, 'doc')
  // Every task text starts with a first name and ends with a place.
  const text = await w1.page.locator('.surface-text').inputValue()
  const place = /(\S+)\.$/.exec(text)
  await select(w1.page, 0, text.indexOf(' '))
  await w1.page.keyboard.press('1')
  await until('the span listed', async () => (await spans(w1.page)).length === 1)
  await select(w1.page, place.index, place.index + place[1].length)
  await w1.page.getByRole('button', { name: /LOC/ }).click()
  await until('both spans listed', async () => (await spans(w1.page)).length === 2)
  await shot(env, w1.page, '3-room-span-task')
  await w1.page.getByRole('button', { name: 'Submit answer' }).click()
  await w1.page.locator('.empty-task').waitFor({ timeout: TIMEOUT })
  await until('answers +1 in the other page', async () => {
    const now = await counts(w2.page)
    return now.answers === before.answers + 1 && now.reserved === before.reserved
  })
  await until('my answers count', async () => (await w1.page.locator('[data-my-answers]').innerText()) === '1')
  await shot(env, w2.page, '3b-room-tablet')
}

/**
 * The worker's flow by keyboard alone, with the focus visible at every stop:
 * Tab to “Get a task”, Enter; the focus lands in the task's text; select
 * words with Shift+arrows and label them by number key; Tab to “Submit
 * answer”, Enter; the progress counts the answer and the focus is back on
 * “Get a task”.
 */
async function keyboard(env) {
  const { page } = env.people.worker1
  const answered = Number(await page.locator('[data-my-answers]').innerText())
  const focused = () => page.evaluate(() => document.activeElement?.id ?? '')
  const visible = async (what) => assert.ok(await focusVisible(page), `the focus on ${what} is visible (outline or box-shadow)`)
  // From the top of the page.
  await page.evaluate(() => document.activeElement?.blur())
  const presses = await tabTo(page, '“Get a task”', () => document.activeElement?.id === 'get-task')
  assert.ok(presses > 0, 'reached by Tab')
  await visible('“Get a task”')
  await page.keyboard.press('Enter')
  await page.locator('.reservation').waitFor({ timeout: TIMEOUT })
  await synced(page, 'doc')
  const textarea = page.locator('.surface-text')
  await until('the focus in the task text', async () => (await textarea.evaluate((node) => node === document.activeElement)))
  await visible('the task text')
  // The first word by Shift+Right from the start, labelled PER by key 1.
  const text = await textarea.inputValue()
  // The caret moves in the task's text, but the text itself cannot be changed.
  for (const key of ['x', 'Enter', 'Backspace', 'Delete']) await page.keyboard.press(key)
  assert.equal(await textarea.inputValue(), text, 'the task text is not editable')
  const first = text.indexOf(' ')
  await page.keyboard.press('Control+Home')
  for (let i = 0; i < first; i++) await page.keyboard.press('Shift+ArrowRight')
  assert.deepEqual(await textarea.evaluate((node) => [node.selectionStart, node.selectionEnd]), [0, first], 'selected by keyboard')
  await page.keyboard.press('1')
  await until('the keyboard span PER', async () => (await spans(page)).some((span) => span.start === 0 && span.end === first && span.label === 'PER'))
  // The last word (before the full stop) by Shift+Left from the end, labelled LOC by key 3.
  const place = /(\S+)\.$/.exec(text)
  await page.keyboard.press('Control+End')
  await page.keyboard.press('ArrowLeft')
  for (let i = 0; i < place[1].length; i++) await page.keyboard.press('Shift+ArrowLeft')
  await page.keyboard.press('3')
  await until('the keyboard span LOC', async () => (await spans(page)).some((span) => span.start === place.index && span.end === place.index + place[1].length && span.label === 'LOC'))
  assert.equal((await spans(page)).length, 2)
  await tabTo(page, '“Submit answer”', () => document.activeElement?.id === 'submit-answer')
  await visible('“Submit answer”')
  await shot(env, page, '3c-room-keyboard')
  await page.keyboard.press('Enter')
  await page.locator('.empty-task').waitFor({ timeout: TIMEOUT })
  await until('the answer counted in my progress', async () => (await page.locator('[data-my-answers]').innerText()) === String(answered + 1))
  await until('the focus back on “Get a task”', async () => (await focused()) === 'get-task')
  await visible('“Get a task” after submitting')
}

/** Mute, announcement, lock and a released reservation show live on the worker's page. */
async function moderation(env) {
  const mod = (env.people.moderator = await person(env, env.tokens.moderator, { hash: `#/console/${env.room}` }))
  const { worker2: w2 } = env.people
  const row = (user) => mod.page.locator(`tr[data-user="${user}"]`)
  await row('wanda').waitFor({ timeout: TIMEOUT })
  await synced(mod.page, 'live')
  // Mute.
  await mod.page.getByLabel('Reason', { exact: true }).fill('please keep it on topic')
  await row('wanda').getByRole('button', { name: 'Mute Wanda (worker)' }).click()
  await w2.page.locator('[data-banner="muted"]').waitFor({ timeout: TIMEOUT })
  assert.match(await w2.page.locator('[data-banner="muted"]').innerText(), /muted until .*keep it on topic/)
  assert.equal(await w2.page.getByLabel('Message', { exact: true }).isDisabled(), true)
  await until('muted badge in the console', async () => (await row('wanda').locator('.badge', { hasText: 'muted' }).count()) === 1)
  // The row was re-rendered (and is, every poll): the focus moved from Mute to its successor, not to the page's start.
  await until('the focus on Unmute', () => mod.page.evaluate(() => document.activeElement?.getAttribute('aria-label') === 'Unmute Wanda (worker)'))
  await row('wanda').getByRole('button', { name: 'Unmute Wanda (worker)' }).click()
  await until('unmuted', async () => (await w2.page.locator('[data-banner="muted"]').count()) === 0)
  assert.equal(await w2.page.getByLabel('Message', { exact: true }).isDisabled(), false)
  // A moderator deletes a message from the console's chat; the worker sees it go.
  await w2.page.getByLabel('Message', { exact: true }).fill('buy cheap followers')
  await w2.page.getByLabel('Message', { exact: true }).press('Enter')
  const spam = mod.page.locator('.msg').filter({ hasText: 'buy cheap followers' })
  await spam.getByRole('button', { name: 'Delete message of wanda' }).click()
  await until('the deletion on the worker page', async () => (await w2.page.locator('.msg').filter({ hasText: 'buy cheap followers' }).count()) === 0)
  // Pause and unpause (REST), shown live.
  await mod.page.getByLabel('Reason', { exact: true }).fill('too many fast answers')
  await row('wanda').getByRole('button', { name: 'Pause Wanda (worker)' }).click()
  await until('paused shown', async () => /paused.*too many fast answers/i.test(await w2.page.locator('[data-banner="paused"]').innerText()))
  assert.equal(await w2.page.getByRole('button', { name: 'Get a task' }).isDisabled(), true)
  await row('wanda').getByRole('button', { name: 'Unpause Wanda (worker)' }).click()
  await until('unpaused', async () => (await w2.page.locator('[data-banner="paused"]').count()) === 0)
  // Announcement.
  await mod.page.getByLabel('Announcement').fill('Break at 3pm: finish your task first.')
  await mod.page.getByRole('button', { name: 'Post' }).click()
  await until('announcement shown', async () => /Break at 3pm/.test(await w2.page.locator('[data-banner="announcement"]').innerText()))
  // Lock and unlock.
  await mod.page.getByLabel('Lock reason').fill('checking the guidelines')
  await mod.page.getByRole('button', { name: 'Lock the room' }).click()
  await until('lock shown', async () => /locked: checking the guidelines/.test(await w2.page.locator('[data-banner="locked"]').innerText()))
  assert.equal(await w2.page.getByRole('button', { name: 'Get a task' }).isDisabled(), true)
  assert.equal(await w2.page.getByLabel('Message', { exact: true }).isDisabled(), true)
  await shot(env, w2.page, '7-worker-locked-announcement')
  await mod.page.getByRole('button', { name: 'Unlock the room' }).click()
  await until('unlock shown', async () => (await w2.page.locator('[data-banner="locked"]').count()) === 0)
  // A released reservation.
  await w2.page.getByRole('button', { name: 'Get a task' }).click()
  await w2.page.locator('.reservation').waitFor({ timeout: TIMEOUT })
  await row('wanda').getByRole('button', { name: 'Release task Wanda (worker)' }).click()
  await until('release shown', async () => /released your reservation/.test(await w2.page.locator('.queue').innerText()))
  assert.equal(await w2.page.locator('.reservation').count(), 0)
  await mod.page.getByRole('button', { name: 'Clear' }).click()
  await until('announcement cleared', async () => (await w2.page.locator('[data-banner="announcement"]').count()) === 0)
}

/** A moderator kicks a worker from the console; the worker's page says so and can rejoin by hand. */
async function kick(env) {
  const { moderator: mod, worker1: w1 } = env.people
  const row = mod.page.locator('tr[data-user="wes"]')
  await mod.page.getByLabel('Reason', { exact: true }).fill('take a break')
  await row.getByRole('button', { name: 'Kick Wes (worker)' }).click()
  const stopped = w1.page.locator('[data-stopped="kicked"]')
  await stopped.waitFor({ timeout: TIMEOUT })
  assert.match(await stopped.innerText(), /You were removed from .* by mo/)
  assert.match(await stopped.innerText(), /take a break/)
  await shot(env, w1.page, '6-kicked')
  // It does not come back by itself.
  await w1.page.waitForTimeout(1500)
  assert.equal(await stopped.count(), 1)
  await until('wes offline in the console', async () => /offline/.test(await row.innerText()))
  await shot(env, mod.page, '5-console')
  await mod.page.setViewportSize({ width: 768, height: 1000 })
  await shot(env, mod.page, '5c-console-tablet')
  await mod.page.setViewportSize({ width: 1280, height: 860 })
  await w1.page.getByRole('button', { name: 'Rejoin' }).click()
  await synced(w1.page, 'live')
  await until('wes back in the console', async () => !/offline/.test(await row.innerText()))
  // A ban ends it for good: the token stops working and the page says so.
  mod.page.once('dialog', (dialog) => dialog.accept())
  await row.getByRole('button', { name: 'Ban Wes (worker)' }).click()
  const banned = w1.page.locator('[data-stopped="banned"]')
  await banned.waitFor({ timeout: TIMEOUT })
  assert.match(await banned.innerText(), /banned from .* by mo/)
  assert.equal(await w1.page.getByRole('button', { name: 'Rejoin' }).count(), 0)
}

/** A second room with a single-choice project: two tokens in one keyring, both rooms in the console, a choice by number key. */
async function secondRoom(env) {
  const id = `${env.room}-choice`
  const created = await api(env, env.tokens.owner, 'POST', '/rooms', { id, name: 'E2E sentiment' })
  const owner2 = created.token
  await api(env, owner2, 'PUT', `/rooms/${id}/project`, {
    instructions: 'What is the tone of the sentence?',
    answer_schema: { kind: 'single_choice', options: ['positive', 'negative', 'neutral'] },
    overlap_min: 1, overlap_max: 1, gold_rate: 0, onboarding_gold: 0, min_lead_time_ms: 0,
  })
  await api(env, owner2, 'POST', `/rooms/${id}/tasks`, [{ id: 's1', data: { text: 'The service was slow and the food was cold.' } }])
  const worker = (await api(env, owner2, 'POST', `/rooms/${id}/tokens`, { user: 'wanda', role: 'worker' })).token
  // The owner adds both tokens to one keyring and watches both rooms.
  const context = await env.browser.newContext({ viewport: { width: 1280, height: 900 } })
  const page = await context.newPage()
  watchConsole(env, page)
  env.people.owner = { context, page }
  await page.goto(`${env.base}/`)
  for (const [index, token] of [env.tokens.owner, owner2].entries()) {
    await page.getByLabel('Token or invite link').fill(token)
    await page.getByRole('button', { name: 'Add' }).click()
    await until('the room card', async () => (await page.locator('.room-card').count()) === index + 1)
  }
  await until('two rooms listed', async () => (await page.locator('.room-card').count()) === 2)
  await page.getByRole('link', { name: 'Open the moderator console' }).click()
  const card = page.locator(`.stat-card[data-room="${id}"]`)
  await until('the second room in the console', async () => (await card.locator('[data-stat="online"]').count()) === 1)
  assert.equal(await page.locator('.stat-card').count(), 2)
  // The worker answers with the number key shown on the option.
  const w = (env.people.chooser = await person(env, worker))
  await synced(w.page, 'live')
  await w.page.getByRole('button', { name: 'Get a task' }).click()
  await w.page.getByRole('radio', { name: /positive/ }).focus()
  await synced(w.page, 'doc')
  await w.page.keyboard.press('2')
  await until('the choice checked', () => w.page.getByRole('radio', { name: /negative/ }).isChecked())
  await w.page.getByRole('button', { name: 'Submit answer' }).click()
  await w.page.locator('.empty-task').waitFor({ timeout: TIMEOUT })
  await until('the task complete in the console', async () => /Open\s*0/i.test(await card.innerText()), 8000)
  await shot(env, page, '5b-console-two-rooms')
  await w.context.close()
  delete env.people.chooser
}

/** Provisions a room with one project and its tasks over the REST API; the worker `wren` gets a token. */
async function provisionRoom(env, suffix, name, project, tasks) {
  const id = `${env.room}-${suffix}`
  const owner = (await api(env, env.tokens.owner, 'POST', '/rooms', { id, name })).token
  await api(env, owner, 'PUT', `/rooms/${id}/project`, { overlap_min: 1, overlap_max: 1, gold_rate: 0, onboarding_gold: 0, min_lead_time_ms: 0, ...project })
  await api(env, owner, 'POST', `/rooms/${id}/tasks`, tasks)
  const worker = (await api(env, owner, 'POST', `/rooms/${id}/tokens`, { user: 'wren', role: 'worker', display_name: 'Wren (worker)' })).token
  return { id, owner, worker }
}

/** Takes a task in `page` (signed in to the room) and waits for its working copy; returns the task id and my answers count before. */
async function takeTask(page) {
  await synced(page, 'live')
  const answered = Number(await page.locator('[data-my-answers]').innerText())
  await page.getByRole('button', { name: 'Get a task' }).click()
  const reservation = page.locator('.reservation')
  await reservation.waitFor({ timeout: TIMEOUT })
  await synced(page, 'doc')
  return { taskId: Number(await reservation.getAttribute('data-task')), answered }
}

/** Submits, waits for the progress to count it, and returns the answer the server stored. */
async function submitAndReadBack(env, page, room, taskId, answered) {
  await page.getByRole('button', { name: 'Submit answer' }).click()
  await page.locator('.empty-task').waitFor({ timeout: TIMEOUT })
  await until('“Answers” +1 in my progress', async () => (await page.locator('[data-my-answers]').innerText()) === String(answered + 1))
  const { answers } = await api(env, room.owner, 'GET', `/rooms/${room.id}/tasks/${taskId}`)
  assert.equal(answers.length, 1, 'one answer stored')
  assert.equal(answers[0].worker, 'wren')
  return answers[0].answer
}

/**
 * The other answer forms, each in its own room (provisioned over REST):
 * multi_label by number keys, free_text typed and co-edited live by two
 * tabs of the same worker (their working copy is shared), numeric with an
 * out-of-range number refused before submitting. Each answer is read back
 * from the server as stored.
 */
async function answerForms(env) {
  const multi = await provisionRoom(env, 'multi', 'E2E topics', {
    instructions: 'Which topics does the sentence touch?',
    answer_schema: { kind: 'multi_label', options: ['sport', 'politics', 'weather', 'money'] },
  }, [{ id: 'm1', data: { text: 'Rain stopped the match before the minister arrived.' } }])
  const free = await provisionRoom(env, 'free', 'E2E summaries', {
    instructions: 'Summarise the sentence in a few words.',
    answer_schema: { kind: 'free_text', max_chars: 200 },
  }, [{ id: 'f1', data: { text: 'The committee met on Monday and agreed to fund the new library.' } }])
  const number = await provisionRoom(env, 'numeric', 'E2E ratings', {
    instructions: 'How polite is the sentence, from 0 to 10?',
    answer_schema: { kind: 'numeric', min: 0, max: 10 },
  }, [{ id: 'n1', data: { text: 'Would you kindly pass the salt, please?' } }])
  const w = (env.people.wren = await person(env, multi.worker))
  const { page } = w

  // multi_label: options toggled by their number keys (1 and 3 on, 2 on and off again).
  {
    const { taskId, answered } = await takeTask(page)
    const box = (name) => page.getByRole('checkbox', { name: new RegExp(name) })
    await box('sport').focus()
    for (const key of ['1', '3', '2', '2']) await page.keyboard.press(key)
    await until('sport and weather checked', async () => (await box('sport').isChecked()) && (await box('weather').isChecked()))
    assert.equal(await box('politics').isChecked(), false, 'key 2 twice toggles politics off again')
    assert.equal(await box('money').isChecked(), false)
    assert.ok(await focusVisible(page), 'the focus stays visible on the options')
    await shot(env, page, '8a-room-multi-label')
    assert.deepEqual(await submitAndReadBack(env, page, multi, taskId, answered), ['sport', 'weather'])
  }

  // free_text: typed in one tab, continued in a second tab of the same worker, both live.
  {
    await go(page, `#/join/${free.worker}`)
    await page.waitForURL(new RegExp(`#/room/${free.id}$`), { timeout: TIMEOUT })
    const { taskId, answered } = await takeTask(page)
    const field = page.getByRole('textbox', { name: 'Your answer' })
    await until('the focus in the answer field', () => field.evaluate((node) => node === document.activeElement))
    assert.equal(await field.getAttribute('maxlength'), '200', 'max_chars bounds the field')
    await page.keyboard.type('Library funded')
    const tab = await w.context.newPage()
    watchConsole(env, tab)
    await tab.goto(`${env.base}/#/join/${free.worker}`)
    await tab.waitForURL(new RegExp(`#/room/${free.id}$`), { timeout: TIMEOUT })
    await synced(tab, 'doc')
    const other = tab.getByRole('textbox', { name: 'Your answer' })
    await until('the first tab’s text in the second', async () => (await other.inputValue()) === 'Library funded')
    await other.focus()
    await tab.keyboard.press('Control+End')
    await tab.keyboard.type(' on Monday.')
    await until('the second tab’s text in the first', async () => (await field.inputValue()) === 'Library funded on Monday.')
    // And back, mid-text, while the second tab's caret stays after its own words.
    await field.focus()
    await page.keyboard.press('Control+Home')
    await page.keyboard.type('New ')
    await until('the first tab’s insert in the second', async () => (await other.inputValue()) === 'New Library funded on Monday.')
    await until('the other tab’s caret shown as mine', async () => (await tab.locator('.caret[data-name="You (another tab)"]').count()) > 0)
    await until('the other tab named as mine', async () => /You \(another tab\) editing/.test(await tab.locator('.peers').innerText()))
    assert.deepEqual(await other.evaluate((node) => [node.selectionStart, node.selectionEnd]), [29, 29], 'the caret moved along with the remote insert')
    await shot(env, tab, '8b-room-free-text-second-tab')
    await tab.close()
    assert.equal(await submitAndReadBack(env, page, free, taskId, answered), 'New Library funded on Monday.')
  }

  // numeric: 11 is refused (said next to the field, and on submit), 7.5 is taken.
  {
    await go(page, `#/join/${number.worker}`)
    await page.waitForURL(new RegExp(`#/room/${number.id}$`), { timeout: TIMEOUT })
    const { taskId, answered } = await takeTask(page)
    const field = page.getByRole('spinbutton', { name: /Your answer \(0 to 10\)/ })
    await until('the focus in the number field', () => field.evaluate((node) => node === document.activeElement))
    await page.keyboard.type('11')
    const problem = page.locator(`#number-${taskId}-error`)
    await until('the range message', async () => (await problem.isVisible()) && (await problem.innerText()) === 'Out of range: enter a number from 0 to 10.')
    assert.equal(await field.getAttribute('aria-invalid'), 'true')
    await page.getByRole('button', { name: 'Submit answer' }).click()
    await page.getByRole('alert').filter({ hasText: 'Not yet: at most 10' }).waitFor({ timeout: TIMEOUT })
    assert.equal(await page.locator('.reservation').count(), 1, 'the task is still mine: nothing was submitted')
    assert.equal(await page.locator('[data-my-answers]').innerText(), String(answered))
    await shot(env, page, '8c-room-numeric-refused')
    await field.fill('7.5')
    await until('the range message gone', async () => !(await problem.isVisible()))
    assert.equal(await field.getAttribute('aria-invalid'), null)
    assert.equal(await submitAndReadBack(env, page, number, taskId, answered), 7.5)
  }
  await w.context.close()
  delete env.people.wren
}

/** A room whose project asks whether a sentence is about the weather (single choice), with `tasks`. */
async function weatherRoom(env, suffix, name, tasks, project = {}) {
  return provisionRoom(env, suffix, name, {
    instructions: 'Is the sentence about the weather?',
    answer_schema: { kind: 'single_choice', options: ['yes', 'no'] },
    ...project,
  }, tasks)
}

/** The page of person `who` at 768 px for screenshot `name`, then their browser closed. */
async function at768AndClose(env, who, name) {
  const { page, context } = env.people[who]
  await page.setViewportSize({ width: 768, height: 1000 })
  await shot(env, page, name)
  await context.close()
  delete env.people[who]
}

/**
 * A worker's earnings page: an answer's pending entry, rejected by the
 * owner with a reason the worker reads there; the worker disputes it with
 * a message from the page (and an empty message is refused on the page);
 * the owner upholds it and the worker's entry shows approved, with the
 * whole history. Screenshots at 1280 and 768 px.
 */
async function earnings(env) {
  const room = await weatherRoom(env, 'pay', 'E2E pay', [{ id: 'p1', data: { text: 'Rain is expected all afternoon.' } }], { pay_per_answer: 250000 })
  const w = (env.people.payee = await person(env, room.worker))
  const { page } = w
  const { taskId, answered } = await takeTask(page)
  await page.getByRole('radio', { name: 'yes' }).check()
  assert.equal(await submitAndReadBack(env, page, room, taskId, answered), 'yes')
  const { entries } = await api(env, room.owner, 'GET', `/rooms/${room.id}/ledger?worker=wren`)
  assert.equal(entries.length, 1, 'one entry for the one answer')
  const id = entries[0].id
  const why = 'Off topic: the forecast is not the weather itself.'
  await api(env, room.owner, 'POST', `/rooms/${room.id}/ledger/${id}/reject`, { reason: why })

  await go(page, `#/earnings/${room.id}`)
  await page.getByRole('heading', { name: 'Earnings' }).waitFor({ timeout: TIMEOUT })
  const row = page.locator(`tr[data-entry="${id}"]`)
  await until('the rejection and its reason on the page', async () =>
    (await row.getAttribute('data-state')) === 'rejected' && (await row.innerText()).includes(why))
  assert.match(await page.locator('[data-total="rejected"]').innerText(), /0\.25/)
  await shot(env, page, '9a-earnings-rejected')
  await row.getByRole('button', { name: 'Dispute' }).click()
  const message = page.getByLabel(`Why should entry ${id} not be rejected?`, { exact: false })
  await page.getByRole('button', { name: 'Send dispute' }).click()
  await page.getByText('Say why', { exact: false }).waitFor({ timeout: TIMEOUT })
  await message.fill('The sentence is about rain this afternoon: that is weather.')
  await page.getByRole('button', { name: 'Send dispute' }).click()
  await until('the entry disputed', async () => (await row.getAttribute('data-state')) === 'disputed')
  const trail = await api(env, room.owner, 'GET', `/rooms/${room.id}/ledger/${id}`)
  assert.equal(trail.events.at(-1).reason, 'The sentence is about rain this afternoon: that is weather.')

  await api(env, room.owner, 'POST', `/rooms/${room.id}/ledger/${id}/uphold`, { reason: 'Fair: rain is weather.' })
  await page.reload()
  await until('the entry approved after the uphold', async () => (await row.getAttribute('data-state')) === 'approved')
  await row.getByRole('button', { name: 'History' }).click()
  const history = page.getByRole('list', { name: `History of entry ${id}` })
  await history.waitFor({ timeout: TIMEOUT })
  const states = await history.locator('li').evaluateAll((items) => items.map((item) => item.dataset.state))
  assert.deepEqual(states, ['pending', 'rejected', 'disputed', 'approved'])
  await shot(env, page, '9b-earnings-history')
  await at768AndClose(env, 'payee', '9c-earnings-768')
}

/** Micro-units as the web client shows them (format.ts `money`). */
function units(micros) {
  const cents = Math.round(micros / 10_000)
  return `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, '0')}`
}

/**
 * The owner's Pay page: two answers' pending entries; a rejection without
 * a reason is refused on the page, with one it is booked (the reason is
 * the worker's to read); the other is approved; a bonus is booked; “Pay
 * all approved” runs the pay floor check and pays the approved entries
 * with the worker's top-up (the project's target is far above what the
 * answers paid), and offers a payout CSV, which is read back and checked
 * against the server's paid entries; the worker's Earnings page shows the
 * top-up with its computation.
 */
async function pay(env) {
  const room = await weatherRoom(env, 'payout', 'E2E payout',
    [{ id: 'q1', data: { text: 'Snow closed the pass.' } }, { id: 'q2', data: { text: 'The bank opens at nine.' } }],
    { pay_per_answer: 400000, target_hourly_rate: 36_000_000_000 })
  const w = (env.people.payee = await person(env, room.worker))
  for (const choice of ['yes', 'no']) {
    const { taskId, answered } = await takeTask(w.page)
    await w.page.getByRole('radio', { name: choice }).check()
    // Reading the sentence takes a while: at the target's 10.00 a second,
    // the floor owes more than the 1.90 these answers and the bonus pay.
    await new Promise((resolve) => setTimeout(resolve, 1500))
    assert.equal(await submitAndReadBack(env, w.page, room, taskId, answered), choice)
  }
  const o = (env.people.payer = await person(env, room.owner, { hash: `#/pay/${room.id}` }))
  const { page } = o
  await page.getByRole('heading', { name: 'Pending (2)' }).waitFor({ timeout: TIMEOUT })
  const { entries } = await api(env, room.owner, 'GET', `/rooms/${room.id}/ledger?state=pending`)
  const [newer, older] = entries
  await page.getByRole('checkbox', { name: `Entry ${older.id} of wren` }).check()
  await page.getByRole('button', { name: 'Reject selected' }).click()
  await page.getByText('A rejection needs a reason', { exact: false }).waitFor({ timeout: TIMEOUT })
  await page.getByLabel('Reason for a rejection (shown to the worker)').fill('Snow on a pass is weather: wrong answer.')
  await page.getByRole('button', { name: 'Reject selected' }).click()
  await page.getByRole('heading', { name: 'Pending (1)' }).waitFor({ timeout: TIMEOUT })
  const rejected = await api(env, room.owner, 'GET', `/rooms/${room.id}/ledger/${older.id}`)
  assert.equal(rejected.entry.state, 'rejected')
  assert.equal(rejected.entry.state_reason, 'Snow on a pass is weather: wrong answer.')
  await page.getByRole('checkbox', { name: `Entry ${newer.id} of wren` }).check()
  await page.getByRole('button', { name: 'Approve selected' }).click()
  await page.getByRole('heading', { name: 'Pending (0)' }).waitFor({ timeout: TIMEOUT })
  await page.getByLabel('Worker (user id)').fill('wren')
  await page.getByLabel('Amount').fill('1.50')
  await page.getByLabel('Reason (shown to the worker)').fill('Careful work this week.')
  await page.getByRole('button', { name: 'Book bonus' }).click()
  await page.getByRole('heading', { name: 'Approved, to pay (2)' }).waitFor({ timeout: TIMEOUT })
  await shot(env, page, '10a-pay')
  // A payout's floor check counts work up to two seconds before it
  // (store/floor.rs, GRACE_MS): the answers above may be younger.
  await new Promise((resolve) => setTimeout(resolve, 2100))
  await page.getByRole('button', { name: 'Pay all approved' }).click()
  const link = page.getByRole('link', { name: /Download the payout CSV/ })
  await link.waitFor({ timeout: TIMEOUT })
  const [download] = await Promise.all([page.waitForEvent('download'), link.click()])
  const csv = readFileSync(await download.path(), 'utf8')
  const paid = (await api(env, room.owner, 'GET', `/rooms/${room.id}/ledger?state=paid`)).entries
  assert.deepEqual(paid.map((entry) => entry.kind).sort(), ['answer', 'bonus', 'topup'], 'the approved answer, the bonus and the top-up are paid')
  const topUp = paid.find((entry) => entry.kind === 'topup')
  assert.ok(topUp.amount > 0 && topUp.reason.startsWith('pay floor: '), JSON.stringify(topUp))
  const total = paid.reduce((sum, entry) => sum + entry.amount, 0)
  assert.equal(total, 400000 + 1500000 + topUp.amount)
  assert.deepEqual(csv.trim().split('\n'), ['worker,entries,amount_micros,amount,top_up_micros,top_up',
    `wren,3,${total},${units(total)},${topUp.amount},${units(topUp.amount)}`])
  await page.getByRole('list', { name: 'Pay floor top-ups' }).getByText(`wren: ${units(topUp.amount)}`).waitFor({ timeout: TIMEOUT })
  await page.setViewportSize({ width: 768, height: 1000 })
  await shot(env, page, '10b-pay-768')

  // The worker sees the top-up, its computation and its audit trail.
  await go(w.page, `#/earnings/${room.id}`)
  const row = w.page.locator(`tr[data-entry="${topUp.id}"]`)
  await until('the top-up on the worker\'s page', async () => (await row.count()) === 1 && (await row.getAttribute('data-state')) === 'paid')
  assert.match(await row.innerText(), /Pay floor top-up/)
  assert.ok((await row.innerText()).includes(topUp.reason.slice(0, 40)), 'the computation is shown')
  assert.equal(await w.page.locator('[data-total="top_ups"] .stat-value').innerText(), units(topUp.amount))
  await shot(env, w.page, '9d-earnings-top-up')
  await w.context.close()
  delete env.people.payee

  // The room's tasks: listed, filtered by state, one found by its id, with its answer and decision.
  await page.setViewportSize({ width: 1280, height: 860 })
  await go(page, `#/tasks/${room.id}`)
  await page.getByRole('heading', { name: 'Tasks' }).waitFor({ timeout: TIMEOUT })
  await until('both tasks listed', async () => (await page.locator('tr[data-task]').count()) === 2)
  // Each state's rows are the server's list in that state (both tasks are decided by now: complete or in review).
  for (const state of ['complete', 'review', 'open']) {
    const expected = (await api(env, room.owner, 'GET', `/rooms/${room.id}/tasks?state=${state}`)).tasks.map((task) => String(task.id)).sort()
    await page.getByLabel('State').selectOption(state)
    await until(`the ${state} tasks listed`, async () => {
      const shown = (await page.locator('tr[data-task]').evaluateAll((rows) => rows.map((row) => row.dataset.task))).sort()
      const empty = (await page.getByText('No tasks here yet.').count()) > 0
      return expected.length === 0 ? empty : JSON.stringify(shown) === JSON.stringify(expected)
    })
    if (state === 'open') assert.deepEqual(expected, [], 'no task left open')
  }
  await page.getByLabel('Find a task by its id').fill('q2')
  await page.getByRole('button', { name: 'Find' }).click()
  await page.getByRole('heading', { name: 'Task q2' }).waitFor({ timeout: TIMEOUT })
  const answers = await page.getByRole('region', { name: /Answers/ }).innerText()
  assert.match(answers, /wren/)
  assert.match(await page.locator('[data-consensus]').innerText(), /Decided: no/)
  assert.equal(await page.getByRole('link', { name: 'Open in the review view' }).getAttribute('href'), `#/review/${room.id}/${(await api(env, room.owner, 'GET', `/rooms/${room.id}/tasks`)).tasks.find((task) => task.external_id === 'q2').id}`)
  await shot(env, page, '13a-task-page')
  await page.setViewportSize({ width: 768, height: 1000 })
  await shot(env, page, '13b-task-page-768')
  await go(page, `#/tasks/${room.id}`)
  await until('the task list again', async () => (await page.locator('tr[data-task]').count()) === 2)
  await shot(env, page, '13c-tasks-768')
  await o.context.close()
  delete env.people.payer
}

/**
 * Importing tasks from a CSV file chosen with the file picker: the
 * server's report on the page (one inserted, one duplicate, one rejected
 * with its reason and place in the file), the room's tasks as the server
 * lists them afterwards, and the project's sample file offered.
 */
async function importTasks(env) {
  const room = await weatherRoom(env, 'import', 'E2E import', [{ id: 'i1', data: { text: 'Already here.' } }])
  const o = (env.people.importer = await person(env, room.owner, { hash: `#/import/${room.id}` }))
  const { page } = o
  await page.getByRole('heading', { name: 'Import tasks' }).waitFor({ timeout: TIMEOUT })
  const csv = 'id,text,gold\ni1,Already here.,\ni2,"Fog, then sun.",yes\ni3,Not a choice.,maybe\n'
  await page.getByLabel(/Choose a file of tasks/).setInputFiles({ name: 'tasks.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) })
  const report = page.getByRole('heading', { name: 'Report' })
  await report.waitFor({ timeout: TIMEOUT })
  const number = async (key) => Number(await page.locator(`[data-report="${key}"] dd`).innerText())
  assert.deepEqual([await number('inserted'), await number('duplicates'), await number('rejected')], [1, 1, 1])
  const rejected = await page.getByRole('table', { name: 'Rejected tasks' }).innerText()
  assert.match(rejected, /\b3\b/, 'the rejected task is the third of the file')
  assert.match(rejected, /option/, 'the reason names the options')
  assert.equal(await page.locator('progress').evaluate((bar) => bar.value), 100)
  const { tasks } = await api(env, room.owner, 'GET', `/rooms/${room.id}/tasks`)
  assert.deepEqual(tasks.map((task) => task.external_id).sort(), ['i1', 'i2'])
  assert.equal(tasks.find((task) => task.external_id === 'i2').gold, 'yes')
  // The export, downloaded from the page, holds the room's tasks as the server lists them.
  const [exported] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download JSONL' }).click()])
  const lines = readFileSync(await exported.path(), 'utf8').trim().split('\n').map((line) => JSON.parse(line))
  assert.deepEqual(lines.map((line) => line.external_id).sort(), ['i1', 'i2'])
  assert.equal(lines.find((line) => line.external_id === 'i2').gold, 'yes')
  const sample = page.getByRole('link', { name: /Download a sample file/ })
  assert.equal(await sample.getAttribute('download'), 'sample-single_choice.csv')
  await shot(env, page, '11a-import-report')
  await at768AndClose(env, 'importer', '11b-import-768')
}

/**
 * The People page: the owner invites a worker, copies nothing by hand but
 * reads the invite link off the page, which signs the new worker in in
 * another browser; the token is listed and revoked from the page, and the
 * server lists it revoked.
 */
async function people(env) {
  const room = await weatherRoom(env, 'people', 'E2E people', [{ id: 'x1', data: { text: 'One task.' } }])
  const o = (env.people.host = await person(env, room.owner, { hash: `#/people/${room.id}` }))
  const { page } = o
  await page.getByRole('heading', { name: 'People' }).waitFor({ timeout: TIMEOUT })
  await page.getByLabel('User id').fill('nia')
  await page.getByLabel('Display name').fill('Nia (worker)')
  await page.getByLabel('Role', { exact: true }).selectOption('worker')
  await page.getByLabel('Expires after', { exact: false }).fill('7')
  await page.getByRole('button', { name: 'Invite' }).click()
  const box = page.locator('#invite-link')
  await box.waitFor({ timeout: TIMEOUT })
  const link = await box.inputValue()
  assert.match(link, /#\/join\/crt_/)
  await until('the new token listed', async () => (await page.locator('tr[data-user="nia"]').count()) === 1)
  await shot(env, page, '12a-people')

  // The link signs Nia in, in a browser of her own.
  const context = await env.browser.newContext({ viewport: { width: 1280, height: 860 } })
  const nia = await context.newPage()
  watchConsole(env, nia)
  await nia.goto(link)
  await nia.waitForURL(new RegExp(`#/room/${room.id}$`), { timeout: TIMEOUT })
  await until('Nia signed in', async () => /Nia \(worker\)/.test(await nia.locator('header').innerText()))
  await context.close()

  // Skills and interests of a member, set on the page, are the server's.
  await page.getByLabel('Skills of nia').fill('fr, legal')
  await page.locator('tr[data-member="nia"]').getByRole('button', { name: 'Save' }).first().click()
  await until('nia’s skills stored', async () => JSON.stringify((await api(env, room.owner, 'GET', `/rooms/${room.id}/members/nia/skills`)).skills.sort()) === '["fr","legal"]')
  await page.getByLabel('Interests of nia').fill('weather')
  await page.locator('tr[data-member="nia"]').getByRole('button', { name: 'Save' }).nth(1).click()
  await until('nia’s interests stored', async () => JSON.stringify((await api(env, room.owner, 'GET', `/rooms/${room.id}/members/nia/interests`)).interests) === '["weather"]')
  const row = page.locator('tr[data-user="nia"]')
  await row.getByRole('button', { name: 'Revoke' }).click()
  await until('the token shown revoked', async () => (await row.locator('[data-state]').getAttribute('data-state')) === 'revoked')
  const { tokens } = await api(env, room.owner, 'GET', `/rooms/${room.id}/tokens`)
  assert.ok(tokens.find((token) => token.user === 'nia').revoked_at > 0, 'the server lists it revoked')
  const { members } = await api(env, room.owner, 'GET', `/rooms/${room.id}/members`)
  assert.equal(members.find((member) => member.user === 'nia').role, 'worker')
  // `?` shows the keyboard shortcuts from any page; Escape closes them and the focus comes back.
  await page.getByRole('button', { name: 'Invite' }).focus()
  await page.keyboard.press('?')
  const dialog = page.getByRole('dialog', { name: 'Keyboard shortcuts' })
  await dialog.waitFor({ timeout: TIMEOUT })
  assert.match(await dialog.innerText(), /1 – 9/)
  await shot(env, page, '12c-shortcuts')
  await page.keyboard.press('Escape')
  await dialog.waitFor({ state: 'detached', timeout: TIMEOUT })
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Invite')
  // Typed in a field, `?` is only a character.
  await page.getByLabel('User id').fill('')
  await page.getByLabel('User id').press('?')
  assert.equal(await page.getByLabel('User id').inputValue(), '?')
  assert.equal(await dialog.count(), 0)
  await at768AndClose(env, 'host', '12b-people-768')
}

/**
 * A server operator (a token from `crowdroom operator issue`, holding no
 * room token) signs in with its link and sees every room on the server,
 * as the server lists them, including one just created that it has no
 * part in; it opens that room as a moderator and lands in its console.
 * Screenshots at 1280 and 768 px.
 */
async function operator(env) {
  const room = await weatherRoom(env, 'ops', 'E2E operated', [{ id: 'o1', data: { text: 'Fog over the bay.' } }])
  const context = await env.browser.newContext({ viewport: { width: 1280, height: 860 } })
  const page = await context.newPage()
  env.people.operator = { context, page }
  watchConsole(env, page)
  await page.goto(`${env.base}/#/join/${env.tokens.operator}`)
  await page.waitForURL(/#\/server$/, { timeout: TIMEOUT })
  assert.ok(!page.url().includes(env.tokens.operator), 'the operator token left the address bar')
  await page.getByRole('heading', { name: 'Every room on this server' }).waitFor({ timeout: TIMEOUT })
  assert.equal(await page.evaluate(() => JSON.parse(sessionStorage.getItem('crowdroom.keyring') ?? '[]').length), 0, 'no room token held')
  const listed = []
  let after = null
  do {
    const pageOf = await api(env, env.tokens.operator, 'GET', `/operator/rooms${after ? `?after=${after}` : ''}`)
    listed.push(...pageOf.rooms.map((stats) => stats.room))
    after = pageOf.next
  } while (after)
  assert.ok(listed.includes(room.id) && listed.includes(env.room), JSON.stringify(listed))
  await until('every room of the server listed', async () =>
    JSON.stringify(await page.locator('tr[data-room]').evaluateAll((rows) => rows.map((row) => row.dataset.room))) === JSON.stringify(listed))
  await shot(env, page, '16a-server')
  await page.setViewportSize({ width: 768, height: 1000 })
  await shot(env, page, '16b-server-768')
  await page.setViewportSize({ width: 1280, height: 860 })
  await page.getByRole('button', { name: 'Open as moderator: E2E operated' }).click()
  await page.waitForURL(new RegExp(`#/console/${room.id}$`), { timeout: TIMEOUT })
  await page.getByRole('heading', { name: 'Moderator console' }).waitFor({ timeout: TIMEOUT })
  const held = await page.evaluate(() => JSON.parse(sessionStorage.getItem('crowdroom.keyring') ?? '[]'))
  assert.deepEqual(held.map((entry) => [entry.room, entry.role]), [[room.id, 'moderator']])
  await page.locator(`li[data-room="${room.id}"] [data-stat="online"]`).waitFor({ timeout: TIMEOUT })
  await shot(env, page, '16c-server-opened-console')
  await context.close()
  delete env.people.operator
}

export const SCENARIOS = [
  { name: 'sign-in', run: signIn },
  { name: 'co-edit', run: coEdit },
  { name: 'chat', run: chat },
  { name: 'offline', run: offline },
  { name: 'review', run: review },
  { name: 'queue', run: queue },
  { name: 'keyboard', run: keyboard },
  { name: 'moderation', run: moderation },
  { name: 'kick', run: kick },
  { name: 'second-room', run: secondRoom },
  { name: 'answer-forms', run: answerForms },
  { name: 'earnings', run: earnings },
  { name: 'pay', run: pay },
  { name: 'import', run: importTasks },
  { name: 'people', run: people },
  { name: 'project', run: projectPage },
  { name: 'operator', run: operator },
  { name: 'journey', run: journey },
]
