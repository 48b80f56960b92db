// A member's own pay in a room: their totals and effective hourly rate
// (with how it is computed, beside the project's target, and the pay
// floor's top-ups that guarantee the target), every ledger
// entry with its state, amount and the reason of its latest move, each
// entry's audit trail, and a dispute of a rejection with a message. Only
// the public REST API (docs/API.md, "The fair-pay ledger"); the server
// shows a worker their own entries only.

import { ApiError, type KeyEntry, api, entryFor } from './api'
import { h, mount, toast } from './dom'
import { dateTime, duration, money, perHour } from './format'
import { type View, refusedView, topbar } from './layout'
import type { LedgerEntry, LedgerEntryDetail, LedgerList, LedgerSummary } from './wire'

/** Entries per page of the list. */
const PAGE = 50

const STATE_TEXT: Record<LedgerEntry['state'], string> = {
  pending: 'pending',
  approved: 'approved',
  rejected: 'rejected',
  disputed: 'disputed',
  paid: 'paid',
}

export function earningsView(room: string): View {
  const entry = entryFor(room)
  if (!entry) return refusedView(room, null, 'earnings', '')
  return new EarningsPage(entry)
}

class EarningsPage implements View {
  readonly element = h('div', { class: 'page' })
  private summary = h('section', { class: 'panel earnings-summary', 'aria-labelledby': 'earnings-rate' })
  private rows = h('tbody')
  private more = h('button', { type: 'button', class: 'secondary', hidden: true }, 'Older entries')
  private entries: LedgerEntry[] = []

  constructor(private readonly entry: KeyEntry) {
    const table = h('table', { class: 'table ledger' },
      h('caption', null, 'My ledger entries, newest first'),
      h('thead', null, h('tr', null,
        h('th', { scope: 'col' }, 'Booked'),
        h('th', { scope: 'col' }, 'For'),
        h('th', { scope: 'col' }, 'Amount'),
        h('th', { scope: 'col' }, 'State'),
        h('th', { scope: 'col' }, 'Reason'),
        h('th', { scope: 'col' }, 'Actions'))),
      this.rows)
    this.more.addEventListener('click', () => void this.load(true))
    mount(this.element, topbar(entry, 'earnings'),
      h('main', { class: 'narrow earnings' },
        h('h1', null, 'Earnings'),
        this.summary,
        h('section', { class: 'panel', 'aria-label': 'Ledger entries' }, table, this.more)))
    void this.refresh()
  }

  destroy(): void {}

  private async refresh(): Promise<void> {
    await Promise.all([this.loadSummary(), this.load(false)])
  }

  private async loadSummary(): Promise<void> {
    try {
      const summary = await api<LedgerSummary>(this.entry.token, 'GET', `/rooms/${this.entry.room}/ledger/summary`)
      const mine = summary.workers.find((line) => line.worker === this.entry.user)
      const cell = (label: string, value: string, key: string) =>
        h('div', { class: 'stat', 'data-total': key }, h('span', { class: 'stat-label' }, label), h('span', { class: 'stat-value' }, value))
      const rate = mine?.hourly_rate ?? null
      const below = rate !== null && rate < summary.target_hourly_rate
      mount(this.summary,
        h('h2', { id: 'earnings-rate' }, 'My pay'),
        h('div', { class: 'stats' },
          cell('Pending', money(mine?.pending ?? 0), 'pending'),
          cell('Approved', money(mine?.approved ?? 0), 'approved'),
          cell('Paid', money(mine?.paid ?? 0), 'paid'),
          cell('Disputed', money(mine?.disputed ?? 0), 'disputed'),
          cell('Rejected', money(mine?.rejected ?? 0), 'rejected'),
          cell('Pay floor top-ups', money(mine?.top_ups ?? 0), 'top_ups')),
        h('p', { 'data-rate': rate === null ? '' : String(rate) },
          h('strong', null, `Effective hourly rate: ${perHour(rate)}`),
          below ? h('span', { class: 'warn' }, ` (below the project's target of ${perHour(summary.target_hourly_rate)})`) : ` (the project's target: ${perHour(summary.target_hourly_rate)})`),
        h('p', { class: 'hint' },
          'How it is computed: everything you earned here that was not rejected (pending, approved, disputed and paid entries, bonuses included), ',
          'divided by the time you spent on the answers behind it (each answer’s lead time, from being given the task to submitting it). ',
          'Rejected entries count neither their pay nor their time.'),
        h('p', { class: 'hint' },
          `The pay floor: the project's target is a minimum. When the room pays out, and at least once a day, if what you earned since the last check `,
          `is below ${perHour(summary.target_hourly_rate)} for the time you worked, a top-up brings it to the target. That time also counts answers rejected `,
          'through no fault of yours, and tasks a moderator took back or that reached the project’s time limit while you worked on them. ',
          'Each top-up’s reason shows its computation.'))
    } catch (error) {
      mount(this.summary, h('p', { role: 'alert' }, `Your totals could not be loaded: ${(error as Error).message}`))
    }
  }

  /** The first page, or (`older`) the next one after the entries shown. */
  private async load(older: boolean): Promise<void> {
    const before = older && this.entries.length > 0 ? `&before=${this.entries[this.entries.length - 1].id}` : ''
    try {
      const list = await api<LedgerList>(this.entry.token, 'GET',
        `/rooms/${this.entry.room}/ledger?worker=${encodeURIComponent(this.entry.user)}&limit=${PAGE}${before}`)
      this.entries = older ? [...this.entries, ...list.entries] : list.entries
      this.more.hidden = list.entries.length < PAGE
      this.render()
    } catch (error) {
      mount(this.rows, h('tr', null, h('td', { colSpan: 6, role: 'alert' }, `Your entries could not be loaded: ${(error as Error).message}`)))
    }
  }

  private render(): void {
    if (this.entries.length === 0) {
      mount(this.rows, h('tr', null, h('td', { colSpan: 6 }, 'No entries yet: each answer you submit books one, pending until it is approved.')))
      return
    }
    mount(this.rows, ...this.entries.flatMap((entry) => this.row(entry)))
  }

  private row(entry: LedgerEntry): HTMLElement[] {
    const trail = h('tr', { class: 'ledger-trail', hidden: true }, h('td', { colSpan: 6 }))
    const toggle = h('button', { type: 'button', class: 'secondary', 'aria-expanded': 'false' }, 'History')
    toggle.addEventListener('click', () => void this.toggleTrail(entry, toggle, trail))
    const actions: (Node | string)[] = [toggle]
    if (entry.state === 'rejected') {
      const dispute = h('button', { type: 'button' }, 'Dispute')
      dispute.addEventListener('click', () => this.openDispute(entry, trail, dispute))
      actions.push(' ', dispute)
    }
    const what = entry.kind === 'bonus' ? `Bonus: ${entry.reason ?? ''}`
      : entry.kind === 'topup' ? h('span', { class: 'top-up' }, h('strong', null, 'Pay floor top-up'), h('br'), h('small', null, entry.reason ?? ''))
        : `Answer ${entry.answer_id ?? ''}${entry.no_fault ? ' (rejected through no fault of yours: its time counts for the pay floor)' : ''}`
    const row = h('tr', { 'data-entry': String(entry.id), 'data-state': entry.state },
      h('td', null, dateTime(entry.created_at)),
      h('td', null, what),
      h('td', { class: 'amount' }, money(entry.amount)),
      h('td', null, h('span', { class: `ledger-state ledger-${entry.state}` }, STATE_TEXT[entry.state])),
      h('td', { class: 'state-reason' }, entry.state_reason ?? ''),
      h('td', null, actions))
    return [row, trail]
  }

  private async toggleTrail(entry: LedgerEntry, toggle: HTMLElement, trail: HTMLElement): Promise<void> {
    if (!trail.hidden && trail.dataset.shows === 'history') {
      trail.hidden = true
      toggle.setAttribute('aria-expanded', 'false')
      return
    }
    try {
      const detail = await api<LedgerEntryDetail>(this.entry.token, 'GET', `/rooms/${this.entry.room}/ledger/${entry.id}`)
      const list = h('ol', { class: 'trail', 'aria-label': `History of entry ${entry.id}` },
        ...detail.events.map((event) => h('li', { 'data-state': event.state },
          `${dateTime(event.at)}: ${STATE_TEXT[event.state]} by ${event.actor}`,
          event.reason ? ` — “${event.reason}”` : '')))
      const cell = trail.firstElementChild as HTMLElement
      mount(cell, list, h('p', { class: 'hint' }, `Booked ${duration(Date.now() - entry.created_at)} ago.`))
      trail.dataset.shows = 'history'
      trail.hidden = false
      toggle.setAttribute('aria-expanded', 'true')
    } catch (error) {
      toast(`The history could not be loaded: ${(error as Error).message}`)
    }
  }

  /** A dispute needs a message for the moderators; the entry moves to disputed. */
  private openDispute(entry: LedgerEntry, trail: HTMLElement, opener: HTMLElement): void {
    const id = `dispute-${entry.id}`
    const message = h('textarea', { id, 'aria-required': 'true', rows: 3, maxLength: 2000 }) as HTMLTextAreaElement
    const problem = h('p', { class: 'field-error', role: 'alert', hidden: true })
    const send = h('button', { type: 'submit' }, 'Send dispute')
    const cancel = h('button', { type: 'button', class: 'secondary' }, 'Cancel')
    const form = h('form', { class: 'dispute' },
      h('label', { for: id }, `Why should entry ${entry.id} not be rejected? The moderators read this.`),
      message, problem, h('div', { class: 'actions' }, send, ' ', cancel))
    cancel.addEventListener('click', () => {
      trail.hidden = true
      opener.focus()
    })
    form.addEventListener('submit', (event) => {
      event.preventDefault()
      void this.dispute(entry, message, problem)
    })
    mount(trail.firstElementChild as HTMLElement, form)
    trail.dataset.shows = 'dispute'
    trail.hidden = false
    message.focus()
  }

  private async dispute(entry: LedgerEntry, message: HTMLTextAreaElement, problem: HTMLElement): Promise<void> {
    const reason = message.value.trim()
    if (!reason) {
      problem.textContent = 'Say why: the moderators decide on your message.'
      problem.hidden = false
      message.setAttribute('aria-invalid', 'true')
      message.focus()
      return
    }
    try {
      await api<LedgerEntry>(this.entry.token, 'POST', `/rooms/${this.entry.room}/ledger/${entry.id}/dispute`, { reason })
      toast(`Entry ${entry.id} disputed: the moderators will decide.`)
      await this.refresh()
    } catch (error) {
      problem.textContent = error instanceof ApiError ? error.message : `The dispute was not sent: ${(error as Error).message}`
      problem.hidden = false
    }
  }
}
