// The page frame every view shares: the top bar with the room's name, the
// navigation the role allows, one connection indicator per socket, and who
// I am. Indicators use one vocabulary for both kinds of socket (offline,
// connecting, reconnecting, synced, stopped) so people learn one set.

import { type KeyEntry, isModerator, isTeam, operatorKey } from './api'
import { h } from './dom'
import type { LiveClient, LiveState } from './live'
import { type SharedDoc, type DocState } from './ydoc'

export type ConnState = 'offline' | 'connecting' | 'reconnecting' | 'synced' | 'stopped'

const TEXT: Record<ConnState, string> = {
  offline: 'offline',
  connecting: 'connecting…',
  reconnecting: 'reconnecting…',
  synced: 'synced',
  stopped: 'disconnected',
}

function fromLive(state: LiveState): ConnState {
  return state === 'live' ? 'synced' : state === 'closed' ? 'stopped' : state
}

function fromDoc(state: DocState): ConnState {
  return state
}

/** A small status pill; `data-state` is what tests and styles read. */
export function indicator(name: string, kind: string): { element: HTMLElement; set: (state: ConnState) => void } {
  const element = h('span', { class: 'conn', role: 'status', 'data-conn': kind, 'aria-live': 'polite' })
  const set = (state: ConnState) => {
    if (element.dataset.state === state) return
    element.dataset.state = state
    element.textContent = `${name}: ${TEXT[state]}`
    element.title = state === 'offline' ? 'You are offline: your edits are kept and sent when you reconnect.' : ''
  }
  return { element, set }
}

export function liveIndicator(live: LiveClient): HTMLElement {
  const { element, set } = indicator('Live', 'live')
  set(fromLive(live.state))
  live.on('state', (state: LiveState) => set(fromLive(state)))
  return element
}

export function docIndicator(shared: SharedDoc, name = 'Document'): HTMLElement {
  const { element, set } = indicator(name, 'doc')
  set(fromDoc(shared.state))
  shared.onChange(() => set(fromDoc(shared.state)))
  return element
}

export function topbar(entry: KeyEntry | null, current: string, indicators: Node[] = []): HTMLElement {
  const link = (href: string, label: string, key: string) =>
    h('a', { href, 'aria-current': current === key ? 'page' : null }, label)
  return h('header', { class: 'topbar' },
    h('a', { class: 'brand', href: '#/' }, 'Crowdroom'),
    entry ? h('span', { class: 'room-name' }, entry.room_name) : null,
    h('nav', { 'aria-label': 'Main' },
      link('#/', 'Rooms', 'rooms'),
      operatorKey() ? link('#/server', 'Server', 'server') : null,
      entry ? link(`#/room/${entry.room}`, 'Work', 'room') : null,
      entry ? link(`#/earnings/${entry.room}`, 'Earnings', 'earnings') : null,
      entry && isTeam(entry.role) ? link(`#/review/${entry.room}`, 'Review', 'review') : null,
      entry && isTeam(entry.role) ? link(`#/tasks/${entry.room}`, 'Tasks', 'tasks') : null,
      entry && isTeam(entry.role) ? link(`#/import/${entry.room}`, 'Import', 'import') : null,
      entry && isModerator(entry.role) ? link(`#/console/${entry.room}`, 'Console', 'console') : null,
      entry && isModerator(entry.role) ? link(`#/pay/${entry.room}`, 'Pay', 'pay') : null,
      entry && isModerator(entry.role) ? link(`#/people/${entry.room}`, 'People', 'people') : null,
      entry && isModerator(entry.role) ? link(`#/project/${entry.room}`, 'Project', 'project') : null),
    h('span', { class: 'conns' }, indicators),
    entry ? h('span', { class: 'me' }, entry.display_name, ' ', h('span', { class: `role role-${entry.role}` }, entry.role)) : null)
}

export interface View {
  element: HTMLElement
  destroy(): void
}

/** The page of a view this browser may not show: no token for `room`, or (`refusal`) a role the view is not for. */
export function refusedView(room: string, entry: KeyEntry | null, current: string, refusal: string): View {
  const element = h('div', { class: 'page' }, topbar(entry, current),
    h('main', { class: 'narrow' }, h('p', null, entry ? `${refusal} ` : `No token for room ${room}. `, h('a', { href: '#/' }, 'Back to my rooms'))))
  return { element, destroy: () => undefined }
}
