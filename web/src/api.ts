// The REST API (/api/v1) and the keyring of tokens. A token opens exactly
// one room, so the browser keeps one token per room it was given; the
// keyring lives in sessionStorage so it ends with the browser session and
// never reaches other tabs' history or disk beyond it.

import type { ErrorReply, Me, OperatorMe, Role, RoomInfo } from './wire'

export interface KeyEntry {
  token: string
  room: string
  room_name: string
  user: string
  display_name: string
  role: Role
  token_expires_at: number | null
}

/** An error reply of the API: `{code, message}`, the setting at fault (`field`) when one is, and the HTTP status. */
export class ApiError extends Error {
  constructor(public status: number, public code: string, message: string, public field: string | null = null) {
    super(message)
  }
}

/** The directory the page was served from: the API and sockets sit beside it. */
function baseUrl(): URL {
  return new URL('.', location.href.split('#')[0])
}

/** The address of an API path (for requests `api` does not make: uploads with progress). */
export function apiUrl(path: string): URL {
  return new URL(`api/v1${path}`, baseUrl())
}

export function wsBase(): string {
  const base = baseUrl()
  const scheme = base.protocol === 'https:' ? 'wss:' : 'ws:'
  return `${scheme}//${base.host}${base.pathname.replace(/\/$/, '')}`
}

export async function api<T>(token: string, method: string, path: string, body?: unknown): Promise<T> {
  let response: Response
  try {
    response = await fetch(new URL(`api/v1${path}`, baseUrl()), {
      method,
      headers: {
        Authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
  } catch {
    throw new ApiError(0, 'offline', 'the server cannot be reached')
  }
  const text = await response.text()
  let json: unknown = null
  try {
    json = text ? JSON.parse(text) : null
  } catch {
    json = null
  }
  if (!response.ok) {
    const error = (json ?? {}) as Partial<ErrorReply>
    throw new ApiError(response.status, error.code ?? 'http_' + response.status, error.message ?? (text || response.statusText), typeof error.field === 'string' ? error.field : null)
  }
  return json as T
}

const KEYRING = 'crowdroom.keyring'

export function keyring(): KeyEntry[] {
  try {
    const entries = JSON.parse(sessionStorage.getItem(KEYRING) ?? '[]')
    return Array.isArray(entries) ? entries : []
  } catch {
    return []
  }
}

function saveKeyring(entries: KeyEntry[]): void {
  sessionStorage.setItem(KEYRING, JSON.stringify(entries))
}

export function entryFor(room: string): KeyEntry | undefined {
  return keyring().find((entry) => entry.room === room)
}

/** Checks a token with the server and adds (or replaces) its room's entry. */
export async function addToken(token: string): Promise<KeyEntry> {
  const trimmed = token.trim()
  if (!/^crt_[0-9a-f]{64}$/.test(trimmed)) {
    throw new ApiError(400, 'bad_token', 'a token is crt_ followed by 64 hex digits')
  }
  const me = await api<Me>(trimmed, 'GET', '/me')
  const room = await api<RoomInfo>(trimmed, 'GET', `/rooms/${me.room}`)
  const entry: KeyEntry = {
    token: trimmed,
    room: me.room,
    room_name: room.name,
    user: me.user,
    display_name: me.display_name,
    role: me.role,
    token_expires_at: me.token_expires_at,
  }
  saveKeyring([...keyring().filter((other) => other.room !== entry.room), entry])
  return entry
}

export function removeRoom(room: string): void {
  saveKeyring(keyring().filter((entry) => entry.room !== room))
}

export function updateEntry(room: string, change: Partial<KeyEntry>): void {
  saveKeyring(keyring().map((entry) => (entry.room === room ? { ...entry, ...change } : entry)))
}

export const isModerator = (role: Role): boolean => role === 'owner' || role === 'moderator'
export const isTeam = (role: Role): boolean => isModerator(role) || role === 'core'

/** Where a server operator's token is kept, apart from the room keyring. */
const OPERATOR_KEY = 'crowdroom.operator'
export interface OperatorKey { token: string; user: string; display_name: string }

export function operatorKey(): OperatorKey | null {
  try {
    const key = JSON.parse(sessionStorage.getItem(OPERATOR_KEY) ?? 'null')
    return key && typeof key.token === 'string' ? key : null
  } catch {
    return null
  }
}

export function forgetOperator(): void {
  sessionStorage.removeItem(OPERATOR_KEY)
}

export const isOperatorToken = (token: string): boolean => /^cop_[0-9a-f]{64}$/.test(token.trim())

/** Checks an operator token with the server and keeps it for the session. */
export async function addOperator(token: string): Promise<OperatorKey> {
  const me = await api<OperatorMe>(token.trim(), 'GET', '/operator/me')
  const key = { token: token.trim(), user: me.user, display_name: me.display_name }
  sessionStorage.setItem(OPERATOR_KEY, JSON.stringify(key))
  return key
}
