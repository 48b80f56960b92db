// The moderator console: every room in the keyring where I am an owner or
// moderator, at a glance (occupancy, answers per minute, agreement,
// escalations, pay), polled every few seconds and pushed live for pay
// alerts; then, for the selected room, its workers with their quality and
// earnings, and the actions that reach them live: mute, kick, ban, pause,
// release a reservation, lock the room, announce, delete a message.

import { ApiError, type KeyEntry, api, isModerator, keyring } from './api'
import { RoomState, stoppedPage } from './banners'
import { ChatPanel } from './chat'
import { h, mount, toast } from './dom'
import { duration, money, percent, perHour } from './format'
import { type View, liveIndicator, topbar } from './layout'
import { LiveClient, type Stopped } from './live'
import { PresenceStore, isMuted } from './presence'
import type { Earnings, LedgerSummary, Member, MemberList, PayAlert, QueueInfo, Role, RoomInfo, RoomStats, WorkerList, WorkerRecord } from './wire'

const POLL_MS = 3000

export function consoleView(room: string | null): View {
  const rooms = keyring().filter((entry) => isModerator(entry.role))
  const selected = rooms.find((entry) => entry.room === room) ?? rooms[0]
  if (!selected) {
    const element = h('div', { class: 'page' }, topbar(null, 'console'),
      h('main', { class: 'narrow' }, h('h1', null, 'Moderator console'), h('p', null, 'None of your tokens is an owner’s or moderator’s. ', h('a', { href: '#/' }, 'Back to my rooms'))))
    return { element, destroy: () => undefined }
  }
  return new ConsolePage(rooms, selected)
}

/** One moderated room's live connection and what it tells. */
class Watched {
  readonly live: LiveClient
  readonly presence: PresenceStore
  readonly state: RoomState
  stats: RoomStats | null = null
  payAlert: PayAlert | null = null
  constructor(readonly entry: KeyEntry) {
    this.live = new LiveClient(entry.room, entry.token)
    this.presence = new PresenceStore(this.live)
    this.state = new RoomState(this.live, entry.user, true)
    this.live.on('pay.alert', (alert: PayAlert) => {
      this.payAlert = alert
      toast(`Pay alert in ${entry.room_name}: ${perHour(alert.hourly_rate)} is below the target ${perHour(alert.target_hourly_rate)}.`, 'error')
    })
  }
}

class ConsolePage implements View {
  readonly element = h('div', { class: 'page' })
  private watched: Watched[]
  private current: Watched
  private overview = h('section', { class: 'overview', 'aria-label': 'Rooms' })
  private workers = h('div', { class: 'workers' })
  private chat: ChatPanel
  private reason = h('input', { id: 'action-reason', type: 'text', maxLength: 500, placeholder: 'Shown to the person (optional; needed to pause)' })
  private muteMinutes = h('select', { id: 'mute-minutes' }, [[5, '5 minutes'], [15, '15 minutes'], [60, '1 hour'], [1440, '1 day'], [10080, '1 week']].map(([value, label]) => h('option', { value: String(value) }, String(label))))
  private members: Member[] = []
  private records = new Map<string, WorkerRecord>()
  private earnings = new Map<string, Earnings>()
  private timer = 0
  private lockButton = h('button', { type: 'submit', id: 'lock-toggle', class: 'danger' }, 'Lock the room')

  constructor(rooms: KeyEntry[], selected: KeyEntry) {
    this.watched = rooms.map((entry) => new Watched(entry))
    this.current = this.watched.find((watched) => watched.entry.room === selected.room)!
    const current = this.current
    this.chat = new ChatPanel(current.live, current.presence, { user: selected.user, moderator: true }, () => null)
    current.presence.onChange(() => this.renderWorkers())
    current.state.onChange(() => {
      this.lockButton.textContent = current.state.locked ? 'Unlock the room' : 'Lock the room'
      this.renderOverview()
    })
    current.live.on('stopped', (stopped: Stopped) => mount(this.element, topbar(null, 'console'), stoppedPage(stopped.kind, selected.room_name, stopped.detail, null)))
    const announcement = h('textarea', { id: 'announcement', rows: 2, maxLength: 1000, placeholder: 'Shown at the top of every member’s page' })
    const lockReason = h('input', { id: 'lock-reason', type: 'text', maxLength: 500, placeholder: 'Why (optional)' })
    mount(this.element,
      topbar(selected, 'console', [liveIndicator(current.live)]),
      current.state.element,
      h('main', { class: 'console' },
        h('h1', null, 'Moderator console'),
        this.overview,
        h('div', { class: 'console-grid' },
          h('section', { class: 'panel', 'aria-labelledby': 'workers-title' },
            h('h2', { id: 'workers-title' }, `People in ${selected.room_name}`),
            h('div', { class: 'row action-options' },
              h('label', { for: 'action-reason' }, 'Reason'), this.reason,
              h('label', { for: 'mute-minutes' }, 'Mute for'), this.muteMinutes),
            this.workers),
          h('div', { class: 'col-side' },
            h('section', { class: 'panel', 'aria-labelledby': 'room-actions-title' },
              h('h2', { id: 'room-actions-title' }, 'Room'),
              h('form', { class: 'stack', onSubmit: (event: Event) => {
                event.preventDefault()
                void this.act('mod.lock', { locked: !current.state.locked, ...(lockReason.value.trim() ? { reason: lockReason.value.trim() } : {}) }, current.state.locked ? 'Room unlocked' : 'Room locked')
              } },
                h('label', { for: 'lock-reason' }, 'Lock reason'), lockReason,
                this.lockButton),
              h('form', { class: 'stack', onSubmit: (event: Event) => {
                event.preventDefault()
                void this.act('mod.announce', { body: announcement.value.trim() }, announcement.value.trim() ? 'Announcement posted' : 'Announcement cleared')
              } },
                h('label', { for: 'announcement' }, 'Announcement'), announcement,
                h('div', { class: 'row' },
                  h('button', { type: 'submit', class: 'primary', id: 'announce' }, 'Post'),
                  h('button', { type: 'button', onClick: () => {
                    announcement.value = ''
                    void this.act('mod.announce', { body: '' }, 'Announcement cleared')
                  } }, 'Clear'))),
              h('p', null, h('a', { href: `#/review/${selected.room}` }, 'Adjudicate tasks in review →'))),
            this.chat.element))))
    void this.poll()
    this.timer = window.setInterval(() => void this.poll(), POLL_MS)
  }

  private async act(type: string, fields: Record<string, unknown>, done: string): Promise<unknown> {
    try {
      const result = await this.current.live.request(type, fields)
      toast(done)
      return result
    } catch (error) {
      toast(`${type} refused: ${(error as Error).message}`, 'error')
      return null
    }
  }

  private async poll(): Promise<void> {
    await Promise.all(this.watched.map(async (watched) => {
      try {
        watched.stats = await api<RoomStats>(watched.entry.token, 'GET', `/rooms/${watched.entry.room}/stats`)
      } catch (error) {
        if (error instanceof ApiError && error.status === 404) watched.stats = await fallbackStats(watched.entry).catch(() => null)
      }
    }))
    this.renderOverview()
    const { token, room } = this.current.entry
    const [members, workers, summary] = await Promise.all([
      api<MemberList>(token, 'GET', `/rooms/${room}/members`).catch(() => null),
      api<WorkerList>(token, 'GET', `/rooms/${room}/workers`).catch(() => null),
      api<LedgerSummary>(token, 'GET', `/rooms/${room}/ledger/summary`).catch(() => null),
    ])
    if (members) this.members = members.members
    if (workers) this.records = new Map(workers.workers.map((record) => [record.worker, record]))
    // The listing holds only members who answered: ask for the others who are here one by one.
    const missing = this.members.filter((member) => member.role !== 'owner' && !this.records.has(member.user) && this.current.presence.people.has(member.user)).slice(0, 50)
    const extra = await Promise.all(missing.map((member) => api<WorkerRecord>(token, 'GET', `/rooms/${room}/workers/${member.user}`).catch(() => null)))
    for (const record of extra) if (record) this.records.set(record.worker, record)
    if (summary) this.earnings = new Map(summary.workers.map((earning) => [earning.worker, earning]))
    this.renderWorkers()
  }

  private renderOverview(): void {
    mount(this.overview, h('ul', { class: 'cards' }, this.watched.map((watched) => {
      const stats = watched.stats
      const alert = watched.payAlert !== null || !!stats?.pay.alert
      const selected = watched === this.current
      return h('li', { class: `card stat-card${selected ? ' selected' : ''}`, 'data-room': watched.entry.room },
        h('h2', null, h('a', { href: `#/console/${watched.entry.room}`, 'aria-current': selected ? 'page' : null }, watched.entry.room_name)),
        stats
          ? h('dl', { class: 'stats' },
              h('div', null, h('dt', null, 'Online'), h('dd', { 'data-stat': 'online' }, String(stats.live.online))),
              h('div', null, h('dt', null, 'Answers/min'), h('dd', { 'data-stat': 'apm' }, stats.answers_per_minute.toFixed(1))),
              h('div', null, h('dt', null, 'Agreement'), h('dd', null, percent(stats.agreement))),
              h('div', null, h('dt', null, 'Escalations'), h('dd', { 'data-stat': 'escalations' }, h('a', { href: `#/review/${watched.entry.room}` }, String(stats.escalations)))),
              h('div', null, h('dt', null, 'Open'), h('dd', null, String(stats.counts.open))),
              h('div', { class: alert ? 'alert' : '' }, h('dt', null, 'Pay rate'), h('dd', { 'data-stat': 'pay' }, `${perHour(stats.pay.hourly_rate)} / target ${perHour(stats.pay.target_hourly_rate)}`, alert ? h('span', { class: 'badge badge-warn' }, 'below target') : null)),
              h('div', null, h('dt', null, 'Floor top-ups'), h('dd', { 'data-stat': 'top-ups' }, money(stats.pay.top_ups))))
          : h('p', { class: 'muted' }, 'Loading…'),
        // Lock and announcement as the live channel last told, fresher than the poll.
        watched.state.locked ? h('p', { class: 'badge badge-warn', 'data-stat': 'locked' }, 'locked') : null,
        watched.state.announcement ? h('p', { class: 'muted' }, `Announcement: ${watched.state.announcement.body}`) : null)
    })))
  }

  /** Whether my role may act on `role` (the server checks it again). */
  private canActOn(role: Role, user: string): boolean {
    if (user === this.current.entry.user) return false
    return this.current.entry.role === 'owner' ? role !== 'owner' : ['core', 'worker', 'viewer'].includes(role)
  }

  private renderWorkers(): void {
    const presence = this.current.presence.people
    const people = new Map<string, Member>()
    for (const member of this.members) people.set(member.user, member)
    for (const entry of presence.values()) if (!people.has(entry.user)) people.set(entry.user, { user: entry.user, display_name: entry.display_name, role: entry.role as Role })
    const rows = [...people.values()].sort((a, b) => Number(!presence.has(a.user)) - Number(!presence.has(b.user)) || a.display_name.localeCompare(b.display_name))
    const reason = () => (this.reason.value.trim() ? { reason: this.reason.value.trim() } : {})
    // The focus key names the slot (mute/unmute are one), so the focus stays put when a poll or an action re-renders the row.
    const button = (label: string, name: string, onClick: () => void, danger = false) =>
      h('button', { type: 'button', class: danger ? 'danger small' : 'small', 'aria-label': `${label} ${name}`, 'data-focus-key': `${name}:${label.replace(/^Un/, '').toLowerCase()}`, onClick }, label)
    mount(this.workers, h('table', { class: 'table workers-table' },
      h('thead', null, h('tr', null, ['Person', 'Status', 'Accuracy', 'Lead time', 'Answers', 'Earnings', 'Rate', 'Actions'].map((title) => h('th', { scope: 'col' }, title)))),
      h('tbody', null, rows.map((member) => {
        const online = presence.get(member.user)
        const record = this.records.get(member.user)
        const earning = this.earnings.get(member.user)
        const name = member.display_name
        const user = member.user
        const actionable = this.canActOn(member.role, user)
        return h('tr', { 'data-user': user },
          h('th', { scope: 'row' }, name, ' ', h('span', { class: `role role-${member.role}` }, member.role)),
          h('td', null, online ? online.status : h('span', { class: 'muted' }, 'offline'),
            isMuted(online) ? h('span', { class: 'badge badge-warn' }, 'muted') : null,
            record?.paused ? h('span', { class: 'badge badge-warn', title: record.paused }, 'paused') : null),
          h('td', null, record ? (record.verdict ? percent(record.accuracy) : 'no verdict yet') : '–', record ? h('small', { class: 'muted' }, ` ${record.gold_correct}/${record.gold_total} gold`) : null),
          h('td', null, duration(record?.mean_lead_time_ms)),
          h('td', null, String(record?.answers ?? 0)),
          h('td', null, earning ? money(earning.pending + earning.approved + earning.paid) : '–'),
          h('td', null, perHour(earning?.hourly_rate)),
          h('td', { class: 'actions-cell' }, actionable ? h('div', null,
            isMuted(online)
              ? button('Unmute', name, () => void this.act('mod.unmute', { user }, `${name} unmuted`))
              : button('Mute', name, () => void this.act('mod.mute', { user, minutes: Number(this.muteMinutes.value), ...reason() }, `${name} muted`)),
            button('Kick', name, () => void this.act('mod.kick', { user, ...reason() }, `${name} removed from the room`), true),
            button('Ban', name, () => {
              if (confirm(`Ban ${name}? Their membership ends and their tokens stop working.`)) void this.act('mod.ban', { user, ...reason() }, `${name} banned`)
            }, true),
            record?.paused
              ? button('Unpause', name, () => void this.rest('DELETE', `/workers/${user}/pause`, undefined, `${name} unpaused`))
              : button('Pause', name, () => {
                  const why = this.reason.value.trim()
                  if (!why) {
                    toast('Write the reason for the pause first.', 'error')
                    this.reason.focus()
                  } else void this.rest('POST', `/workers/${user}/pause`, { reason: why }, `${name} paused`)
                }),
            button('Release task', name, async () => {
              const result = (await this.act('mod.release', { user }, `Released ${name}'s reservation`)) as { task_id: number | null } | null
              if (result && result.task_id === null) toast(`${name} held no reservation.`)
            })) : h('span', { class: 'muted' }, user === this.current.entry.user ? 'you' : '—')))
      }))))
  }

  private async rest(method: string, path: string, body: unknown, done: string): Promise<void> {
    try {
      await api(this.current.entry.token, method, `/rooms/${this.current.entry.room}${path}`, body)
      toast(done)
      await this.poll()
    } catch (error) {
      toast(`Refused: ${(error as Error).message}`, 'error')
    }
  }

  destroy(): void {
    clearInterval(this.timer)
    for (const watched of this.watched) watched.live.close()
  }
}

/** Stats from the older endpoints, for a server without GET …/stats. */
async function fallbackStats(entry: KeyEntry): Promise<RoomStats> {
  const [room, queue, summary] = await Promise.all([
    api<RoomInfo>(entry.token, 'GET', `/rooms/${entry.room}`),
    api<QueueInfo>(entry.token, 'GET', `/rooms/${entry.room}/queue`),
    api<LedgerSummary>(entry.token, 'GET', `/rooms/${entry.room}/ledger/summary`),
  ])
  return {
    room: room.id, name: room.name, live: room.live, counts: queue.counts,
    answers_last_minute: 0, answers_per_minute: 0, agreement: null, escalations: queue.counts.review,
    pay: { hourly_rate: summary.hourly_rate, target_hourly_rate: summary.target_hourly_rate, alert: summary.below_target, top_ups: summary.top_ups },
    locked: false, announcement: null,
  }
}
