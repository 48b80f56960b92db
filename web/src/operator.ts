// The server operator's console: every room on the server, live or not,
// with occupancy, throughput, agreement, escalations and pay (the same
// figures as a room's console), and a button that takes a moderator token
// for any room and opens its console. An operator token (`cop_…`, from
// `crowdroom operator issue`) opens this page only; it is kept apart from
// the room keyring, for this browser session. Only the public REST API
// (docs/API.md, "Server operators").

import { ApiError, type OperatorKey, addToken, api, forgetOperator, operatorKey } from './api'
import { field, h, mount, toast } from './dom'
import { money, percent, perHour } from './format'
import { type View, topbar } from './layout'
import type { OperatorCreated, OperatorModerate, OperatorRooms, RoomStats } from './wire'

/** How often the overview reads the figures again. */
const REFRESH_MS = 10_000

export function serverView(): View {
  const key = operatorKey()
  if (!key) {
    const element = h('div', { class: 'page' }, topbar(null, 'server'),
      h('main', { class: 'narrow' }, h('h1', null, 'Server'),
        h('p', null, 'This page is for server operators: sign in with an operator token (', h('code', null, 'crowdroom operator issue'), '). ',
          h('a', { href: '#/' }, 'Back to my rooms'))))
    return { element, destroy: () => undefined }
  }
  return new ServerPage(key)
}

class ServerPage implements View {
  readonly element = h('div', { class: 'page' })
  private table = h('div', { class: 'panel' })
  private timer: number | undefined

  constructor(private readonly key: OperatorKey) {
    mount(this.element, topbar(null, 'server'),
      h('main', { class: 'server' },
        h('h1', null, 'Every room on this server'),
        h('p', { class: 'muted' }, `Signed in as the operator ${key.display_name}. Opening a room gives you a moderator token for it, valid for 12 hours.`),
        this.newRoom(),
        this.table))
    void this.refresh()
    this.timer = window.setInterval(() => void this.refresh(), REFRESH_MS)
  }

  destroy(): void {
    window.clearInterval(this.timer)
  }

  /** Every page of rooms, in id order. */
  private async rooms(): Promise<RoomStats[]> {
    const rooms: RoomStats[] = []
    let after: string | null = null
    do {
      const query: string = after ? `?after=${encodeURIComponent(after)}` : ''
      const page: OperatorRooms = await api<OperatorRooms>(this.key.token, 'GET', `/operator/rooms${query}`)
      rooms.push(...page.rooms)
      after = page.next
    } while (after && rooms.length < 1000)
    return rooms
  }

  private async refresh(): Promise<void> {
    try {
      this.render(await this.rooms())
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) {
        forgetOperator()
        window.clearInterval(this.timer)
      }
      mount(this.table, h('p', { role: 'alert' }, `The rooms could not be loaded: ${(error as Error).message}`))
    }
  }

  private render(rooms: RoomStats[]): void {
    if (rooms.length === 0) {
      mount(this.table, h('p', null, 'No room on this server yet.'))
      return
    }
    const col = (text: string) => h('th', { scope: 'col' }, text)
    mount(this.table, h('table', { class: 'table server-rooms' },
      h('caption', null, `${rooms.length} ${rooms.length === 1 ? 'room' : 'rooms'}, refreshed every ${REFRESH_MS / 1000} s`),
      h('thead', null, h('tr', null, col('Room'), col('Online'), col('Open tasks'), col('Answers/min'), col('Agreement'), col('Escalations'), col('Pay rate'), col('Floor top-ups'), col(''))),
      h('tbody', null, rooms.map((room) => this.row(room)))))
  }

  /** A room started here: the operator owns it and goes on to its project. */
  private newRoom(): HTMLElement {
    const id = h('input', { id: 'new-room-id', type: 'text', autocomplete: 'off', spellcheck: false, maxLength: 64 }) as HTMLInputElement
    const name = h('input', { id: 'new-room-name', type: 'text', maxLength: 200 }) as HTMLInputElement
    const problem = h('p', { class: 'field-error', role: 'alert', hidden: true })
    const form = h('form', { class: 'new-room' },
      h('h2', null, 'New room'),
      field('new-room-id', 'Room id (letters, digits, - and _)', id),
      field('new-room-name', 'Name', name),
      problem,
      h('button', { type: 'submit' }, 'Create room'))
    form.addEventListener('submit', (event) => {
      event.preventDefault()
      void (async () => {
        try {
          const created = await api<OperatorCreated>(this.key.token, 'POST', '/operator/rooms', { id: id.value.trim(), name: name.value.trim() || undefined })
          const entry = await addToken(created.token)
          toast(`Room ${entry.room_name} created: you own it.`)
          location.hash = `#/project/${entry.room}`
        } catch (error) {
          problem.textContent = (error as Error).message
          problem.hidden = false
          id.focus()
        }
      })()
    })
    return h('section', { class: 'panel' }, form)
  }

  private row(room: RoomStats): HTMLElement {
    const open = h('button', { type: 'button', 'aria-label': `Open as moderator: ${room.name}` }, 'Open as moderator')
    open.addEventListener('click', () => void this.open(room))
    return h('tr', { 'data-room': room.room },
      h('th', { scope: 'row' }, room.name, ' ', h('small', { class: 'muted' }, room.room), room.locked ? h('span', { class: 'badge badge-warn' }, 'locked') : null),
      h('td', { 'data-stat': 'online' }, String(room.live.online)),
      h('td', null, String(room.counts.open)),
      h('td', null, room.answers_per_minute.toFixed(1)),
      h('td', null, percent(room.agreement)),
      h('td', { 'data-stat': 'escalations' }, String(room.escalations)),
      h('td', { class: room.pay.alert ? 'alert' : '' }, `${perHour(room.pay.hourly_rate)} / ${perHour(room.pay.target_hourly_rate)}`,
        room.pay.alert ? h('span', { class: 'badge badge-warn' }, 'below target') : null),
      h('td', null, money(room.pay.top_ups)),
      h('td', null, open))
  }

  private async open(room: RoomStats): Promise<void> {
    try {
      const taken = await api<OperatorModerate>(this.key.token, 'POST', `/operator/rooms/${room.room}/moderate`)
      const entry = await addToken(taken.token)
      location.hash = `#/console/${entry.room}`
    } catch (error) {
      toast(`${room.name} could not be opened: ${(error as Error).message}`, 'error')
    }
  }
}
