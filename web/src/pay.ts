// Pay, for owners and moderators: pending entries approved or rejected in
// bulk (a rejection needs a reason, which the worker reads on their
// Earnings page, and may be marked as not the worker's fault, so the pay
// floor still counts its time), disputes upheld or denied with a reason,
// a payout (the server's pay floor check, then every approved entry paid,
// top-ups included) with a payout CSV per worker, and bonuses. Only the
// public REST API (docs/API.md, "The fair-pay ledger"): bulk moves are one
// request per entry, in turn, each reported; a payout is one request.

import { ApiError, type KeyEntry, api, entryFor, isModerator } from './api'
import { field, h, mount, toast } from './dom'
import { dateTime, money } from './format'
import { type View, refusedView, topbar } from './layout'
import type { LedgerEntry, LedgerList, LedgerState, Payout, PayoutLine } from './wire'

/** Most entries one section lists (the server's page limit). */
const LIMIT = 1000

export function payView(room: string): View {
  const entry = entryFor(room)
  if (!entry || !isModerator(entry.role)) return refusedView(room, entry ?? null, 'pay', 'Only owners and moderators pay workers.')
  return new PayPage(entry)
}

/** A payout CSV: one line per worker with what was paid to them, of which the pay floor's top-up. */
export function payoutCsv(paid: PayoutLine[]): string {
  const quote = (text: string) => (/[",\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text)
  const lines = [...paid]
    .sort((a, b) => a.worker.localeCompare(b.worker))
    .map((line) => `${quote(line.worker)},${line.entries},${line.amount},${money(line.amount)},${line.top_up},${money(line.top_up)}`)
  return ['worker,entries,amount_micros,amount,top_up_micros,top_up', ...lines].join('\n') + '\n'
}

class PayPage implements View {
  readonly element = h('div', { class: 'page' })
  private pending = h('section', { class: 'panel', 'aria-labelledby': 'pay-pending' })
  private disputes = h('section', { class: 'panel', 'aria-labelledby': 'pay-disputes' })
  private approved = h('section', { class: 'panel', 'aria-labelledby': 'pay-approved' })
  private bonus = h('section', { class: 'panel', 'aria-labelledby': 'pay-bonus' })
  private payout = h('div', { class: 'payout' })

  constructor(private readonly entry: KeyEntry) {
    mount(this.element, topbar(entry, 'pay'),
      h('main', { class: 'narrow pay' }, h('h1', null, 'Pay'), this.pending, this.disputes, this.approved, this.bonus))
    this.renderBonus()
    void this.refresh()
  }

  destroy(): void {}

  private async list(state: LedgerState): Promise<LedgerEntry[]> {
    const list = await api<LedgerList>(this.entry.token, 'GET', `/rooms/${this.entry.room}/ledger?state=${state}&limit=${LIMIT}`)
    return list.entries
  }

  private async refresh(): Promise<void> {
    try {
      const [pending, disputed, approved] = await Promise.all([this.list('pending'), this.list('disputed'), this.list('approved')])
      this.renderPending(pending)
      this.renderDisputes(disputed)
      this.renderApproved(approved)
    } catch (error) {
      mount(this.pending, h('p', { role: 'alert' }, `The ledger could not be loaded: ${(error as Error).message}`))
    }
  }

  /** Moves each entry in turn; returns how many moved and the first refusal. */
  private async move(entries: LedgerEntry[], action: string, reason: string | null, noFault = false): Promise<{ moved: LedgerEntry[]; failed: string | null }> {
    const moved: LedgerEntry[] = []
    let failed: string | null = null
    const body = reason ? (noFault ? { reason, no_fault: true } : { reason }) : undefined
    for (const entry of entries) {
      try {
        moved.push(await api<LedgerEntry>(this.entry.token, 'POST', `/rooms/${this.entry.room}/ledger/${entry.id}/${action}`, body))
      } catch (error) {
        failed ??= `entry ${entry.id}: ${error instanceof ApiError ? error.message : (error as Error).message}`
      }
    }
    return { moved, failed }
  }

  private report(what: string, done: { moved: LedgerEntry[]; failed: string | null }): void {
    toast(`${what}: ${done.moved.length} ${done.moved.length === 1 ? 'entry' : 'entries'}${done.failed ? `; not moved: ${done.failed}` : ''}`, done.failed ? 'error' : 'info')
  }

  private renderPending(entries: LedgerEntry[]): void {
    const boxes = new Map<number, HTMLInputElement>()
    const all = h('input', { type: 'checkbox', id: 'pay-all', 'aria-label': 'Select every pending entry' }) as HTMLInputElement
    all.addEventListener('change', () => boxes.forEach((box) => (box.checked = all.checked)))
    const rows = entries.map((entry) => {
      const box = h('input', { type: 'checkbox', 'aria-label': `Entry ${entry.id} of ${entry.worker}` }) as HTMLInputElement
      boxes.set(entry.id, box)
      return h('tr', { 'data-entry': String(entry.id) },
        h('td', null, box), h('td', null, entry.worker), h('td', null, entry.kind === 'answer' ? `answer ${entry.answer_id ?? ''}` : entry.kind === 'bonus' ? 'bonus' : 'pay floor top-up'),
        h('td', { class: 'amount' }, money(entry.amount)), h('td', null, dateTime(entry.created_at)))
    })
    const reasonId = 'pay-reject-reason'
    const reason = h('input', { id: reasonId, type: 'text', maxLength: 500 }) as HTMLInputElement
    const noFault = h('input', { id: 'pay-no-fault', type: 'checkbox' }) as HTMLInputElement
    const problem = h('p', { class: 'field-error', role: 'alert', hidden: true })
    const chosen = () => entries.filter((entry) => boxes.get(entry.id)?.checked)
    const approve = h('button', { type: 'button' }, 'Approve selected')
    const reject = h('button', { type: 'button', class: 'secondary' }, 'Reject selected')
    approve.addEventListener('click', () => void (async () => {
      const picked = chosen()
      if (picked.length === 0) return toast('Select the entries to approve first.')
      this.report('Approved', await this.move(picked, 'approve', null))
      await this.refresh()
    })())
    reject.addEventListener('click', () => void (async () => {
      const picked = chosen()
      if (picked.length === 0) return toast('Select the entries to reject first.')
      if (!reason.value.trim()) {
        problem.textContent = 'A rejection needs a reason: the worker reads it.'
        problem.hidden = false
        reason.setAttribute('aria-invalid', 'true')
        reason.focus()
        return
      }
      this.report('Rejected', await this.move(picked, 'reject', reason.value.trim(), noFault.checked))
      await this.refresh()
    })())
    mount(this.pending,
      h('h2', { id: 'pay-pending' }, `Pending (${entries.length})`),
      entries.length === 0
        ? h('p', null, 'Nothing waits for approval.')
        : h('div', null,
          h('table', { class: 'table' },
            h('thead', null, h('tr', null, h('th', { scope: 'col' }, all), h('th', { scope: 'col' }, 'Worker'), h('th', { scope: 'col' }, 'For'), h('th', { scope: 'col' }, 'Amount'), h('th', { scope: 'col' }, 'Booked'))),
            h('tbody', null, rows)),
          h('div', { class: 'actions' }, approve),
          h('div', { class: 'reject-form' }, h('label', { for: reasonId }, 'Reason for a rejection (shown to the worker)'), reason,
            h('label', { class: 'check' }, noFault, ' Not the worker’s fault (a broken task, unclear instructions): the pay floor still counts their time'),
            problem, reject)))
  }

  private renderDisputes(entries: LedgerEntry[]): void {
    const rows = entries.map((entry) => {
      const id = `pay-decide-${entry.id}`
      const reason = h('input', { id, type: 'text', maxLength: 500 }) as HTMLInputElement
      const decide = (action: 'uphold' | 'deny') => async () => {
        if (!reason.value.trim()) {
          reason.setAttribute('aria-invalid', 'true')
          reason.focus()
          return toast('Give the worker a reason for the decision.', 'error')
        }
        this.report(action === 'uphold' ? 'Upheld' : 'Denied', await this.move([entry], action, reason.value.trim()))
        await this.refresh()
      }
      const uphold = h('button', { type: 'button' }, 'Uphold')
      const deny = h('button', { type: 'button', class: 'secondary' }, 'Deny')
      uphold.addEventListener('click', () => void decide('uphold')())
      deny.addEventListener('click', () => void decide('deny')())
      return h('tr', { 'data-entry': String(entry.id) },
        h('td', null, entry.worker), h('td', { class: 'amount' }, money(entry.amount)),
        h('td', { class: 'state-reason' }, entry.state_reason ?? ''),
        h('td', null, h('label', { for: id, class: 'visually-hidden' }, `Reason for deciding entry ${entry.id}`), reason, ' ', uphold, ' ', deny))
    })
    mount(this.disputes,
      h('h2', { id: 'pay-disputes' }, `Disputes (${entries.length})`),
      entries.length === 0
        ? h('p', null, 'No dispute waits for a decision.')
        : h('table', { class: 'table' },
          h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Worker'), h('th', { scope: 'col' }, 'Amount'), h('th', { scope: 'col' }, 'Their message'), h('th', { scope: 'col' }, 'Decision'))),
          h('tbody', null, rows)))
  }

  private renderApproved(entries: LedgerEntry[]): void {
    const byWorker = new Map<string, number>()
    for (const entry of entries) byWorker.set(entry.worker, (byWorker.get(entry.worker) ?? 0) + entry.amount)
    const pay = h('button', { type: 'button' }, 'Pay all approved')
    pay.addEventListener('click', () => void (async () => {
      try {
        const payout = await api<Payout>(this.entry.token, 'POST', `/rooms/${this.entry.room}/ledger/payout`)
        const count = payout.lines.reduce((sum, line) => sum + line.entries, 0)
        const topUps = payout.floor.top_ups.length
        toast(`Paid: ${count} ${count === 1 ? 'entry' : 'entries'}${topUps ? `, with ${topUps} pay floor top-up${topUps === 1 ? '' : 's'}` : ''}` +
          `${payout.skipped_own ? `; ${payout.skipped_own} of your own left for another moderator` : ''}.`)
        this.offerPayout(payout)
      } catch (error) {
        toast(`The payout failed: ${error instanceof ApiError ? error.message : (error as Error).message}`, 'error')
      }
      await this.refresh()
    })())
    mount(this.approved,
      h('h2', { id: 'pay-approved' }, `Approved, to pay (${entries.length})`),
      entries.length === 0
        ? h('p', null, 'Nothing approved waits for payment.')
        : h('div', null,
          h('table', { class: 'table' },
            h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Worker'), h('th', { scope: 'col' }, 'Amount'))),
            h('tbody', null, [...byWorker.entries()].map(([worker, micros]) => h('tr', { 'data-worker': worker }, h('td', null, worker), h('td', { class: 'amount' }, money(micros)))))),
          h('div', { class: 'actions' }, pay)),
      this.payout)
  }

  /** The top-ups the payout booked, and a download link for its CSV. */
  private offerPayout(payout: Payout): void {
    if (payout.lines.length === 0) return
    const url = URL.createObjectURL(new Blob([payoutCsv(payout.lines)], { type: 'text/csv' }))
    const name = `payout-${this.entry.room}-${new Date().toISOString().slice(0, 10)}.csv`
    const workers = payout.lines.length
    mount(this.payout,
      payout.floor.top_ups.length === 0
        ? h('p', null, `Every worker paid earned at least the target rate of ${money(payout.floor.target_hourly_rate)}/h: no top-up was needed.`)
        : h('div', null,
          h('p', null, `Pay floor top-ups, to bring each worker to ${money(payout.floor.target_hourly_rate)}/h for the time counted:`),
          h('ul', { class: 'top-ups', 'aria-label': 'Pay floor top-ups' }, payout.floor.top_ups.map((top) =>
            h('li', { 'data-worker': top.worker }, `${top.worker}: ${money(top.amount)} (earned ${money(top.earned)}, the target pays ${money(top.due)})`)))),
      h('p', null, h('a', { href: url, download: name }, `Download the payout CSV (${workers} ${workers === 1 ? 'worker' : 'workers'})`)))
  }

  private renderBonus(): void {
    const worker = h('input', { id: 'bonus-worker', type: 'text', autocomplete: 'off' }) as HTMLInputElement
    const amount = h('input', { id: 'bonus-amount', type: 'number', min: '0.01', step: '0.01' }) as HTMLInputElement
    const reason = h('input', { id: 'bonus-reason', type: 'text', maxLength: 500 }) as HTMLInputElement
    const problem = h('p', { class: 'field-error', role: 'alert', hidden: true })
    // One key per bonus filled in: the server books a key once, so a
    // second click (or a retry after a lost reply) pays once.
    const newKey = () => `web-${Date.now()}-${Math.random().toString(36).slice(2)}`
    let key = newKey()
    const form = h('form', { class: 'bonus-form' },
      field('bonus-worker', 'Worker (user id)', worker),
      field('bonus-amount', 'Amount', amount),
      field('bonus-reason', 'Reason (shown to the worker)', reason),
      problem,
      h('button', { type: 'submit' }, 'Book bonus'))
    form.addEventListener('submit', (event) => {
      event.preventDefault()
      void (async () => {
        const micros = Math.round(Number(amount.value) * 1_000_000)
        if (!worker.value.trim() || !reason.value.trim() || !(micros > 0)) {
          problem.textContent = 'A bonus needs a worker, a positive amount and a reason.'
          problem.hidden = false
          return
        }
        problem.hidden = true
        try {
          await api<LedgerEntry>(this.entry.token, 'POST', `/rooms/${this.entry.room}/ledger/bonus`,
            { worker: worker.value.trim(), amount: micros, reason: reason.value.trim(), idempotency_key: key })
          toast(`Bonus of ${money(micros)} booked for ${worker.value.trim()}.`)
          form.reset()
          key = newKey()
          await this.refresh()
        } catch (error) {
          problem.textContent = error instanceof ApiError ? error.message : (error as Error).message
          problem.hidden = false
        }
      })()
    })
    mount(this.bonus, h('h2', { id: 'pay-bonus' }, 'Bonus'), form)
  }
}
