// The live queue as a worker sees it: counts, my reservation with a
// countdown, my progress and effective hourly rate. The reservation is
// renewed (task.heartbeat) before it runs out, but only while the person
// is active on the page, so an abandoned tab lets its task go back.

import { h, mount, toast } from './dom'
import { countdown, money, perHour } from './format'
import type { LiveClient } from './live'
import type { Counts, Heartbeat, Mine, Progress, QueueMine, QueueState, TaskExpired, TaskOffer, TaskReleased } from './wire'

/** Renew when less than this is left (or a third of the TTL, if larger). */
const RENEW_BEFORE_MS = 60_000
/** Activity newer than this counts as "the person is here". */
const ACTIVE_WINDOW_MS = 120_000

export class QueuePanel {
  readonly element: HTMLElement
  counts: Counts | null = null
  mine: Mine | null = null
  progress: Progress | null = null
  notice = ''
  /** The project's reservation TTL, to renew a third of it before the end. */
  ttlSeconds = 300
  private lastActivity = Date.now()
  private heartbeatInFlight = false
  private timer = 0
  private body = h('div')
  private listeners = new Set<() => void>()

  constructor(
    private readonly live: LiveClient,
    /** `onTaken`: after I asked for a task and got one (the view moves the focus into it). */
    private readonly options: { canWork: () => string | null; onTaken?: () => void },
  ) {
    this.element = h('section', { class: 'panel queue', 'aria-labelledby': 'queue-title' }, h('h2', { id: 'queue-title' }, 'Queue'), this.body)
    for (const event of ['keydown', 'pointerdown', 'input', 'scroll']) window.addEventListener(event, this.activity, { passive: true, capture: true })
    live.on('hello', () => this.load())
    live.on('queue.counts', (counts: Counts) => {
      this.counts = counts
      this.render()
    })
    live.on('queue.mine', ({ mine, progress }: QueueMine) => this.setMine(mine, progress))
    live.on('task.expired', ({ task_id }: TaskExpired) => {
      if (this.mine?.reservation.task_id === task_id) this.setMine(null)
      this.say(`Your reservation of task ${task_id} expired.`)
    })
    live.on('task.assigned', () => this.load())
    live.on('task.released', ({ task_id, by }: TaskReleased) => {
      if (this.mine?.reservation.task_id === task_id) this.setMine(null)
      this.say(`${by} released your reservation of task ${task_id}.`)
    })
    this.timer = window.setInterval(() => this.tick(), 1000)
    this.render()
  }

  private readonly activity = () => {
    this.lastActivity = Date.now()
  }

  onChange(listener: () => void): void {
    this.listeners.add(listener)
  }

  private say(message: string): void {
    this.notice = message
    toast(message)
    this.render()
  }

  private async load(): Promise<void> {
    try {
      const state = await this.live.request<QueueState>('queue.get')
      this.counts = state.counts
      this.setMine(state.mine, state.progress)
    } catch {
      // Loaded again on the next hello.
    }
  }

  private setMine(mine: Mine | null, progress?: Progress): void {
    const changed = (mine?.reservation.task_id ?? null) !== (this.mine?.reservation.task_id ?? null)
    this.mine = mine
    if (progress) this.progress = progress
    this.render()
    if (changed) for (const listener of this.listeners) listener()
  }

  async request(): Promise<void> {
    this.notice = ''
    try {
      const result = await this.live.request<TaskOffer>('task.request')
      if (result.reservation && result.task) {
        this.setMine({ reservation: result.reservation, task: result.task })
        this.options.onTaken?.()
      } else {
        const reasons: Record<string, string> = {
          no_work: 'No task is waiting for you right now.',
          missing_skills: 'The open tasks need skills you do not have.',
          paused: `You are paused${result.why ? `: ${result.why}` : ''}.`,
          locked: 'The room is locked: no new tasks until it is unlocked.',
        }
        this.say(reasons[result.reason ?? ''] ?? `No task (${result.reason}).`)
      }
    } catch (error) {
      this.say(`Could not get a task: ${(error as Error).message}`)
    }
  }

  async skip(): Promise<void> {
    if (!this.mine) return
    try {
      await this.live.request('task.skip', { task_id: this.mine.reservation.task_id })
      this.setMine(null)
    } catch (error) {
      toast(`Could not skip: ${(error as Error).message}`, 'error')
    }
  }

  private tick(): void {
    const reservation = this.mine?.reservation
    const countdownNode = this.body.querySelector('[data-countdown]')
    if (!reservation) return
    const left = reservation.expires_at - Date.now()
    if (countdownNode) countdownNode.textContent = countdown(left)
    const threshold = Math.max(RENEW_BEFORE_MS, (this.ttlSeconds * 1000) / 3)
    const canExtend = reservation.expires_at < reservation.cap_at
    if (left < threshold && left > 0 && canExtend && !this.heartbeatInFlight && Date.now() - this.lastActivity < ACTIVE_WINDOW_MS) {
      this.heartbeatInFlight = true
      this.live
        .request<Heartbeat>('task.heartbeat', { task_id: reservation.task_id })
        .then(({ expires_at }) => {
          if (this.mine?.reservation.task_id === reservation.task_id) this.mine.reservation.expires_at = expires_at
        })
        .catch(() => undefined)
        .finally(() => window.setTimeout(() => (this.heartbeatInFlight = false), 10_000))
    }
  }

  render(): void {
    const counts = this.counts
    const progress = this.progress
    const earnings = progress?.earnings
    const block = this.options.canWork()
    const mine = this.mine
    mount(this.body,
      counts
        ? h('dl', { class: 'counts', 'data-counts': JSON.stringify(counts) },
            ...(['open', 'reserved', 'review', 'complete', 'total'] as const).map((key) => h('div', { 'data-count': key }, h('dt', null, key), h('dd', null, String(counts[key])))))
        : h('p', { class: 'muted' }, 'Loading…'),
      h('h3', { class: 'sub' }, 'My task'),
      mine
        ? h('p', { class: 'reservation', 'data-task': mine.reservation.task_id },
            `Task ${mine.task.external_id} is yours for `, h('strong', { 'data-countdown': '' }, countdown(mine.reservation.expires_at - Date.now())),
            h('small', { class: 'muted' }, ' (renewed while you work)'))
        : h('p', { class: 'muted' }, 'None reserved.'),
      mine
        ? h('button', { type: 'button', 'data-focus-key': 'queue-action', onClick: () => this.skip() }, 'Skip this task')
        : h('button', { type: 'button', class: 'primary', id: 'get-task', 'data-focus-key': 'queue-action', disabled: block !== null, onClick: () => this.request() }, 'Get a task'),
      block && !mine ? h('p', { class: 'muted' }, block) : null,
      this.notice ? h('p', { class: 'notice', role: 'status' }, this.notice) : null,
      h('h3', { class: 'sub' }, 'My progress'),
      h('dl', { class: 'stats' },
        h('div', null, h('dt', null, 'Answers'), h('dd', { 'data-my-answers': '' }, String(progress?.answers ?? 0))),
        h('div', null, h('dt', null, 'Pending'), h('dd', null, money(earnings?.pending ?? progress?.pending_earnings ?? 0))),
        h('div', null, h('dt', null, 'Approved'), h('dd', null, money(earnings?.approved ?? 0))),
        h('div', null, h('dt', null, 'Paid'), h('dd', null, money(earnings?.paid ?? 0))),
        h('div', null, h('dt', null, 'My hourly rate'), h('dd', { 'data-hourly': '' }, perHour(earnings?.hourly_rate))))
    )
  }

  destroy(): void {
    clearInterval(this.timer)
    for (const event of ['keydown', 'pointerdown', 'input', 'scroll']) window.removeEventListener(event, this.activity, { capture: true })
  }
}
