// One shared Yjs document over the y-websocket provider, with the state the
// page shows (offline / connecting / reconnecting / synced / stopped), the
// server's permission-denied reasons (the provider only logs them), and the
// awareness fields every view uses: who I am, my colour, what I select.

import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import * as authProtocol from 'y-protocols/auth'
import type * as decoding from 'lib0/decoding'
import { wsBase } from './api'
import { userColor } from './dom'

export type DocState = 'connecting' | 'reconnecting' | 'synced' | 'offline' | 'stopped'

/** What a peer publishes through awareness. */
export interface PeerState {
  user?: { id: string; name: string; color: string }
  /** The peer's selection: `field` names the widget; offsets are UTF-16 (task text) or relative positions (Y.Text). */
  selection?: { field: string; anchor: unknown; head: unknown } | null
}

export interface Peer extends PeerState {
  clientId: number
}

export class SharedDoc {
  readonly doc = new Y.Doc()
  readonly provider: WebsocketProvider
  state: DocState = 'connecting'
  /** The last reason the server refused one of my updates, if any. */
  denied: string | null = null
  private everSynced = false
  private listeners = new Set<() => void>()
  private readonly onOnline = () => {
    if (this.state !== 'stopped') this.provider.connect()
    this.update()
  }
  private readonly onOffline = () => {
    // Close at once instead of waiting for the socket to time out, so the
    // page says "offline" when the browser knows it is.
    this.provider.disconnect()
    this.update()
  }

  constructor(
    readonly room: string,
    readonly name: string,
    token: string,
    me: { user: string; display_name: string },
  ) {
    this.provider = new WebsocketProvider(`${wsBase()}/yjs/${encodeURIComponent(room)}`, name, this.doc, {
      params: { token },
      disableBc: true,
      connect: navigator.onLine,
      // 4001 (kicked) and 4400-4499 (revoked, expired, banned) need a person to act.
      shouldReconnect: (event: CloseEvent) => event.code !== 4001 && !(event.code >= 4400 && event.code < 4500),
    })
    this.provider.messageHandlers[2] = (_encoder: unknown, decoder: decoding.Decoder) => {
      authProtocol.readAuthMessage(decoder, this.doc, (_doc, reason) => {
        this.denied = reason
        this.update()
      })
    }
    this.provider.awareness.setLocalStateField('user', { id: me.user, name: me.display_name, color: userColor(me.user) })
    this.provider.on('status', () => this.update())
    this.provider.on('sync', () => this.update())
    this.provider.on('closed', () => {
      this.state = 'stopped'
      this.emit()
    })
    this.provider.awareness.on('change', () => this.emit())
    window.addEventListener('online', this.onOnline)
    window.addEventListener('offline', this.onOffline)
    this.update()
  }

  private update(): void {
    if (this.state === 'stopped') return this.emit()
    const provider = this.provider
    let state: DocState
    if (!navigator.onLine || (!provider.shouldConnect && !provider.wsconnected)) state = 'offline'
    else if (provider.wsconnected && provider.synced) state = 'synced'
    else state = this.everSynced ? 'reconnecting' : 'connecting'
    if (state === 'synced') this.everSynced = true
    this.state = state
    this.emit()
  }

  private emit(): void {
    for (const listener of this.listeners) listener()
  }

  /** Called on any change of state or awareness. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  setSelection(selection: PeerState['selection']): void {
    this.provider.awareness.setLocalStateField('selection', selection)
  }

  /** Everyone else with a user, one entry per client. */
  peers(): Peer[] {
    const peers: Peer[] = []
    for (const [clientId, state] of this.provider.awareness.getStates()) {
      if (clientId === this.doc.clientID || !state?.user) continue
      peers.push({ clientId, ...(state as PeerState) })
    }
    return peers
  }

  /** Reconnects by hand after a kick. */
  rejoin(): void {
    this.state = 'connecting'
    this.provider.connect()
    this.update()
  }

  destroy(): void {
    window.removeEventListener('online', this.onOnline)
    window.removeEventListener('offline', this.onOffline)
    this.listeners.clear()
    this.provider.destroy()
    this.doc.destroy()
  }
}

export const STATE_TEXT: Record<DocState, string> = {
  connecting: 'Connecting…',
  reconnecting: 'Reconnecting…',
  synced: 'Synced',
  offline: 'Offline: edits are kept and sent on reconnect',
  stopped: 'Disconnected',
}
