// The room's live channel (/rooms/{room}/live, JSON protocol 1): requests
// with ids and promised replies, server events, and a connection state the
// page shows. It reconnects by itself after transient closes, but not after
// the server's deliberate ones: kicked (4001), revoked or banned (4403) and
// expired (4401) need a person to act, so the page shows why instead.

import { wsBase } from './api'
import type { Hello, Removed } from './wire'

export type LiveState = 'connecting' | 'live' | 'reconnecting' | 'offline' | 'closed'

/** Why the channel stopped for good. */
export interface Stopped {
  code: number
  reason: string
  /** Data of the `you.kicked` / `you.banned` event that came before the close. */
  detail: Removed | null
  kind: 'kicked' | 'banned' | 'revoked' | 'expired'
}

export class LiveError extends Error {
  constructor(public code: string, message: string) {
    super(message)
  }
}

type Listener = (data: any) => void

const REQUEST_TIMEOUT_MS = 15_000
const MAX_BACKOFF_MS = 5_000

export class LiveClient {
  state: LiveState = 'connecting'
  hello: Hello | null = null
  stopped: Stopped | null = null
  private socket: WebSocket | null = null
  private nextId = 1
  private pending = new Map<string, { resolve: (value: any) => void; reject: (error: LiveError) => void; timer: number }>()
  private listeners = new Map<string, Set<Listener>>()
  private attempts = 0
  private retryTimer = 0
  private lastNotice: { event: string; data: any } | null = null
  private wanted = true
  private readonly onOnline = () => {
    if (!this.stopped) this.reconnectNow()
  }
  private readonly onOffline = () => this.goOffline()

  constructor(public readonly room: string, private readonly token: string) {
    window.addEventListener('online', this.onOnline)
    window.addEventListener('offline', this.onOffline)
    this.open()
  }

  /** Listens to a server event (`chat.message`, ...), or to `hello`, `state`, `stopped`. */
  on(event: string, listener: Listener): () => void {
    let set = this.listeners.get(event)
    if (!set) this.listeners.set(event, (set = new Set()))
    set.add(listener)
    return () => set.delete(listener)
  }

  private emit(event: string, data: unknown): void {
    for (const listener of this.listeners.get(event) ?? []) {
      try {
        listener(data)
      } catch (error) {
        console.error(`live listener for ${event} failed`, error)
      }
    }
  }

  private setState(state: LiveState): void {
    if (this.state === state) return
    this.state = state
    this.emit('state', state)
  }

  private open(): void {
    if (!this.wanted || this.socket) return
    if (!navigator.onLine) {
      this.setState('offline')
      return
    }
    this.setState(this.attempts === 0 && !this.hello ? 'connecting' : 'reconnecting')
    const url = `${wsBase()}/rooms/${encodeURIComponent(this.room)}/live?token=${encodeURIComponent(this.token)}`
    const socket = new WebSocket(url)
    this.socket = socket
    socket.onmessage = (message) => this.receive(message.data)
    socket.onclose = (event) => this.closed(socket, event.code, event.reason)
  }

  private receive(raw: unknown): void {
    let frame: any
    try {
      frame = JSON.parse(String(raw))
    } catch {
      return
    }
    if (frame.type === 'hello') {
      this.attempts = 0
      this.hello = frame
      this.setState('live')
      this.emit('hello', frame)
    } else if (frame.type === 'reply') {
      const waiting = this.pending.get(String(frame.id))
      if (!waiting) return
      this.pending.delete(String(frame.id))
      clearTimeout(waiting.timer)
      if (frame.ok) waiting.resolve(frame.result)
      else waiting.reject(new LiveError(frame.error?.code ?? 'error', frame.error?.message ?? 'request failed'))
    } else if (frame.type === 'event') {
      if (frame.event === 'you.kicked' || frame.event === 'you.banned') {
        this.lastNotice = { event: frame.event, data: frame.data }
      }
      this.emit(frame.event, frame.data)
    }
  }

  private closed(socket: WebSocket, code: number, reason: string): void {
    if (this.socket !== socket) return
    this.socket = null
    this.failPending('offline', 'the connection closed before the reply')
    const notice = this.lastNotice
    this.lastNotice = null
    const stop = (kind: Stopped['kind']): void => {
      this.wanted = false
      this.stopped = { code, reason, detail: notice?.data ?? null, kind }
      this.setState('closed')
      this.emit('stopped', this.stopped)
    }
    if (code === 4001 || notice?.event === 'you.kicked') return stop('kicked')
    if (code === 4403) return stop(notice?.event === 'you.banned' ? 'banned' : 'revoked')
    if (code === 4401) return stop('expired')
    if (!this.wanted) return this.setState('closed')
    if (!navigator.onLine) return this.setState('offline')
    this.attempts += 1
    this.setState('reconnecting')
    // A role change (4003) reconnects at once to pick up the new role.
    const delay = code === 4003 ? 0 : Math.min(MAX_BACKOFF_MS, 250 * 2 ** Math.min(this.attempts, 5))
    clearTimeout(this.retryTimer)
    this.retryTimer = window.setTimeout(() => this.open(), delay)
  }

  private failPending(code: string, message: string): void {
    for (const [, waiting] of this.pending) {
      clearTimeout(waiting.timer)
      waiting.reject(new LiveError(code, message))
    }
    this.pending.clear()
  }

  private goOffline(): void {
    clearTimeout(this.retryTimer)
    const socket = this.socket
    this.socket = null
    this.failPending('offline', 'you are offline')
    if (socket) {
      socket.onclose = null
      socket.close()
    }
    if (this.wanted) this.setState('offline')
  }

  /** Reconnects at once (the network came back, or a person pressed Rejoin). */
  reconnectNow(): void {
    if (this.stopped && this.stopped.kind !== 'kicked') return
    this.stopped = null
    this.wanted = true
    this.attempts = Math.max(this.attempts, 1)
    clearTimeout(this.retryTimer)
    this.open()
  }

  /** Sends a request and resolves with its result; rejects with the server's error code. */
  request<T = any>(type: string, fields: Record<string, unknown> = {}): Promise<T> {
    const socket = this.socket
    if (!socket || socket.readyState !== WebSocket.OPEN || this.state !== 'live') {
      return Promise.reject(new LiveError('offline', 'not connected'))
    }
    const id = `r${this.nextId++}`
    return new Promise<T>((resolve, reject) => {
      const timer = window.setTimeout(() => {
        this.pending.delete(id)
        reject(new LiveError('timeout', `${type}: no reply`))
      }, REQUEST_TIMEOUT_MS)
      this.pending.set(id, { resolve, reject, timer })
      socket.send(JSON.stringify({ id, type, ...fields }))
    })
  }

  close(): void {
    this.wanted = false
    window.removeEventListener('online', this.onOnline)
    window.removeEventListener('offline', this.onOffline)
    clearTimeout(this.retryTimer)
    this.failPending('closed', 'closed')
    const socket = this.socket
    this.socket = null
    if (socket) {
      socket.onclose = null
      socket.close(1000)
    }
    this.listeners.clear()
  }
}
