// The room's moderation state as the live channel reports it (lock,
// announcement, my mute, my pause), shown as banners at the top of every
// view of the room, and read by the views to disable what the server
// would refuse anyway (chat while muted, edits and new tasks while locked).

import { h, mount } from './dom'
import { dateTime, time } from './format'
import type { LiveClient } from './live'
import type { Announcement, Hello, MemberMuted, RoomLocked, WorkerPaused } from './wire'

export class RoomState {
  locked = false
  lockReason: string | null = null
  lockedBy: string | null = null
  announcement: Announcement | null = null
  mutedUntil: number | null = null
  muteReason: string | null = null
  paused: string | null = null
  readonly element = h('div', { class: 'banners' })
  private listeners = new Set<() => void>()
  private muteTimer = 0

  constructor(live: LiveClient, me: string, private readonly moderator: boolean) {
    live.on('hello', (hello: Hello) => {
      this.locked = hello.state?.locked ?? false
      this.lockReason = hello.state?.lock_reason ?? null
      this.announcement = hello.state?.announcement ?? null
      this.setMute(hello.you.muted_until ?? null, null)
    })
    live.on('room.locked', ({ locked, reason, by }: RoomLocked) => {
      this.locked = locked
      this.lockReason = reason ?? null
      this.lockedBy = by ?? null
      this.changed()
    })
    live.on('room.announcement', (data: Announcement | null) => {
      this.announcement = data && data.body ? data : null
      this.changed()
    })
    live.on('member.muted', ({ user, until, reason }: MemberMuted) => {
      if (user === me) this.setMute(until ?? null, reason ?? null)
    })
    live.on('worker.paused', ({ paused, reason }: WorkerPaused) => {
      this.paused = paused ? reason || 'paused by a moderator' : null
      this.changed()
    })
  }

  private setMute(until: number | null, reason: string | null): void {
    this.mutedUntil = until
    this.muteReason = reason
    clearTimeout(this.muteTimer)
    // Unmute by itself when the time is up: the server does not send an event then.
    if (until && until > Date.now()) this.muteTimer = window.setTimeout(() => this.changed(), Math.min(until - Date.now() + 500, 2 ** 31 - 1))
    this.changed()
  }

  get muted(): boolean {
    return !!this.mutedUntil && this.mutedUntil > Date.now()
  }

  /** Locked for me: moderators keep working in a locked room. */
  get lockedForMe(): boolean {
    return this.locked && !this.moderator
  }

  onChange(listener: () => void): void {
    this.listeners.add(listener)
  }

  changed(): void {
    this.render()
    for (const listener of this.listeners) listener()
  }

  private render(): void {
    mount(this.element,
      this.announcement
        ? h('div', { class: 'banner banner-info', role: 'status', 'data-banner': 'announcement' },
            h('strong', null, 'Announcement: '), this.announcement.body, h('small', null, ` (posted by ${this.announcement.by}, ${dateTime(this.announcement.at)})`))
        : null,
      this.locked
        ? h('div', { class: 'banner banner-warn', role: 'alert', 'data-banner': 'locked' },
            h('strong', null, 'The room is locked'), this.lockReason ? `: ${this.lockReason.replace(/([^.!?])$/, '$1.')}` : '.',
            this.moderator ? ' Members cannot chat, edit or take new tasks.' : ' You cannot chat, edit or take new tasks; you can still submit the task you hold.')
        : null,
      this.muted
        ? h('div', { class: 'banner banner-warn', role: 'alert', 'data-banner': 'muted' },
            h('strong', null, `You are muted until ${time(this.mutedUntil)}`), this.muteReason ? `: ${this.muteReason.replace(/([^.!?])$/, '$1.')}` : '.', ' You cannot send chat messages.')
        : null,
      this.paused
        ? h('div', { class: 'banner banner-warn', role: 'alert', 'data-banner': 'paused' },
            h('strong', null, 'You are paused'), `: ${this.paused}. You get no new tasks until a moderator lifts it.`)
        : null)
  }
}

/** Why I cannot chat now, or null. */
export function chatBlock(state: RoomState, role: string): string | null {
  if (role === 'viewer') return 'Viewers read the chat but cannot write.'
  if (state.muted) return `You are muted until ${time(state.mutedUntil)}.`
  if (state.lockedForMe) return 'The room is locked: chat is closed.'
  return null
}

/** The page shown instead of the room after a kick, ban or revocation. */
export function stoppedPage(kind: string, room: string, detail: { by?: string; reason?: string | null } | null, rejoin: (() => void) | null): HTMLElement {
  const by = detail?.by ? ` by ${detail.by}` : ''
  const reason = detail?.reason ? h('p', null, 'Reason: ', h('q', null, detail.reason)) : null
  const titles: Record<string, string> = {
    kicked: `You were removed from ${room}${by}`,
    banned: `You were banned from ${room}${by}`,
    revoked: `Your access to ${room} was revoked`,
    expired: `Your access to ${room} expired`,
  }
  return h('main', { class: 'stopped', 'data-stopped': kind },
    h('section', { class: 'panel stopped-card', role: 'alert' },
      h('h1', null, titles[kind] ?? 'Disconnected'),
      reason,
      kind === 'kicked'
        ? h('p', null, 'You can come back when you are ready. Your work so far is kept.')
        : h('p', null, 'Your token no longer opens this room. Ask the room’s owner for a new invite.'),
      h('div', { class: 'row' },
        rejoin ? h('button', { type: 'button', class: 'primary', onClick: rejoin }, 'Rejoin') : null,
        h('a', { class: 'button', href: '#/' }, 'Back to my rooms'))))
}
