// What the server sends: every REST body and live-channel reply and event
// this client reads, with the fields it reads. The server's serde types are
// the source; tests/it/wire_types.rs checks each declaration here against
// real replies and events of a running server (every field declared here
// must be there, with this type), so a rename on either side fails a test.
// Keep the declarations simple: `interface` and `type` aliases of objects,
// primitives, string literals, unions, arrays, `Record<string, T>`.

// ---- REST (/api/v1) ----

export type Role = 'owner' | 'moderator' | 'core' | 'worker' | 'viewer'

/** `GET /me`: who the token speaks as, where. */
export interface Me {
  user: string
  display_name: string
  room: string
  role: Role
  token_id: string
  token_expires_at: number | null
}

/** What is live in a room right now. */
export interface LiveFigures { online: number; live_connections: number; doc_connections: number; docs_loaded: number }

/** `GET /rooms/{room}`. */
export interface RoomInfo { id: string; name: string; created_at: number; live: LiveFigures }

export interface Counts { total: number; open: number; complete: number; review: number; reserved: number; answers: number }

/** `GET /rooms/{room}/queue`. */
export interface QueueInfo { counts: Counts }

export type AnswerSchema =
  | { kind: 'single_choice'; options: string[] }
  | { kind: 'multi_label'; options: string[] }
  | { kind: 'spans'; labels: string[] }
  | { kind: 'free_text'; max_chars?: number | null }
  | { kind: 'numeric'; min?: number | null; max?: number | null }

/** A label's colour (`#rrggbb`) and hotkey (one character) in the work view; both optional. */
export interface LabelStyle { colour?: string; hotkey?: string }

/** `GET|PUT /rooms/{room}/project`. Money in integer micro-units; `label_styles` is left out when empty. */
export interface Project {
  instructions: string
  answer_schema: AnswerSchema
  label_styles?: Record<string, LabelStyle>
  required_skills: string[]
  overlap_min: number
  overlap_max: number
  min_confidence: number
  gold_rate: number
  onboarding_gold: number
  reservation_ttl_seconds: number
  reservation_cap_seconds: number
  pay_per_answer: number
  target_hourly_rate: number
  auto_approve_seconds: number
  min_accuracy: number
  min_lead_time_ms: number
}

/** Ids of the first few tasks of one kind, and how many there are. */
export interface ListedTasks { count: number; first: number[] }

/** User ids of the first few members of one kind, and how many there are. */
export interface ListedMembers { count: number; first: string[] }

export interface TaskTally { total: number; open: number; complete: number; review: number; gold: number }

/** `POST /rooms/{room}/project/preview`: what saving a project would do to the room's work (docs/API.md). */
export interface ProjectPreview {
  changed: string[]
  tasks: TaskTally
  overlap_kept: number
  overlap_capped: number
  overlap_extended: number
  review_kept: number
  decided_by_new_rules: number
  answered_under_old_schema: number
  gold_misfits: ListedTasks
  newly_lacking_skills: ListedMembers
  reservations_kept: number
  newly_qualified: ListedMembers
}

/** An error reply: `field` names the setting at fault, when one is (docs/API.md, Errors). */
export interface ErrorReply { code: string; message: string; field?: string }

/** `POST /rooms`: the new room and an owner token for it (shown once). */
export interface CreatedRoom { room: { id: string; name: string; created_at: number }; token: string; token_id: string }

/** One task an import refused: its place in the file (the first is 1) and why. */
export interface ImportError { task: number; message: string }

/** `POST /rooms/{room}/tasks`: what the import did. */
export interface ImportReport { inserted: number; duplicates: number; rejected: number; errors: ImportError[] }

export interface TaskRow {
  id: number
  external_id: string
  data: Record<string, unknown>
  state: string
  consensus: unknown
  confidence: number | null
  method: string | null
  overlap_target: number
  answered: number
  reserved: number
  gold?: unknown
  created_at: number
}

/** `GET /rooms/{room}/tasks`. */
export interface TaskList { tasks: TaskRow[] }

export interface TaskAnswer { answer_id: number; worker: string; answer: unknown; lead_time_ms: number; created_at: number }

export interface TaskReview { reviewer: string; decision: string; answer: unknown; previous: unknown; reason: string | null; at: number }

/** `GET /rooms/{room}/tasks/{task}`. */
export interface TaskDetail {
  task: TaskRow
  answers: TaskAnswer[]
  reviews: TaskReview[]
}

export interface Announcement { body: string; by: string; at: number }

/** `GET /rooms/{room}/stats`: the moderator console's figures. */
export interface RoomStats {
  room: string
  name: string
  live: LiveFigures
  counts: Counts
  answers_last_minute: number
  answers_per_minute: number
  agreement: number | null
  escalations: number
  pay: { hourly_rate: number | null; target_hourly_rate: number; alert: boolean; top_ups: number }
  locked: boolean
  announcement: Announcement | null
}

/** `GET /operator/me`: the server operator behind an operator token. */
export interface OperatorMe { user: string; display_name: string; token_id: string; expires_at: number | null }

/** `GET /operator/rooms?after=`: a page of every room on the server, by id; `next` is the next page's `after`. */
export interface OperatorRooms { rooms: RoomStats[]; next: string | null }

/** `POST /operator/rooms`: the new room and an owner token for it, in the operator's name. */
export interface OperatorCreated { room: { id: string; name: string; created_at: number }; token: string; token_id: string }

/** `POST /operator/rooms/{room}/moderate`: a moderator token for the room, in the operator's name. */
export interface OperatorModerate { room: string; role: Role; token: string; token_id: string; expires_at: number | null }

/**
 * A worker's quality record. A worker reading their own sees null for the
 * gold counts, accuracy and verdict (they would tell which tasks are gold);
 * moderators see them all.
 */
export interface WorkerRecord {
  worker: string
  accuracy: number | null
  verdict: boolean | null
  answers: number
  mean_lead_time_ms: number | null
  fast_answers: number
  gold_correct: number | null
  gold_total: number | null
  paused: string | null
}

/** `GET /rooms/{room}/workers`. */
export interface WorkerList { workers: WorkerRecord[] }

export interface Earnings { worker: string; pending: number; approved: number; paid: number; rejected: number; disputed: number; top_ups: number; hourly_rate: number | null }

/** `GET /rooms/{room}/ledger/summary`. */
export interface LedgerSummary { workers: Earnings[]; hourly_rate: number | null; target_hourly_rate: number; below_target: boolean; top_ups: number }

export type LedgerState = 'pending' | 'approved' | 'rejected' | 'disputed' | 'paid'

/**
 * One pay entry: an answer's pay, a bonus, or the pay floor's top-up;
 * `state_reason` is the reason given with its latest move; `no_fault`, a
 * rejection the moderator said was not the worker's fault.
 */
export interface LedgerEntry {
  id: number
  worker: string
  kind: 'answer' | 'bonus' | 'topup'
  answer_id: number | null
  amount: number
  reason: string | null
  state: LedgerState
  state_reason: string | null
  no_fault: boolean
  created_at: number
}

/** A pay floor top-up, as booked: what was earned and counted, and what the target pays for it. */
export interface TopUpLine { worker: string; entry_id: number; amount: number; earned: number; counted_ms: number; no_fault_ms: number; due: number }

/** A pay floor check: the period it closed (ms, after `from` up to `to`) and its top-ups. */
export interface FloorRun { id: number; from: number; to: number; reason: 'payout' | 'daily'; target_hourly_rate: number; top_ups: TopUpLine[] }

/** What one worker was paid by a payout; `top_up` is the floor's part of `amount`. */
export interface PayoutLine { worker: string; entries: number; amount: number; top_up: number }

/** `POST /rooms/{room}/ledger/payout`. */
export interface Payout { floor: FloorRun; lines: PayoutLine[]; skipped_own: number }

/** `GET /rooms/{room}/ledger?worker=`: newest first. */
export interface LedgerList { entries: LedgerEntry[] }

/** One move in an entry's audit trail. */
export interface LedgerEvent { state: LedgerState; reason: string | null; actor: string; at: number }

/** `GET /rooms/{room}/ledger/{id}`: the entry and its audit trail, oldest first. */
export interface LedgerEntryDetail { entry: LedgerEntry; events: LedgerEvent[] }

export interface Member { user: string; display_name: string; role: Role }

/** `GET /rooms/{room}/members`. */
export interface MemberList { members: Member[] }

/** `GET|PUT /rooms/{room}/members/{user}/skills`. */
export interface MemberSkills { user: string; skills: string[] }

/** `GET|PUT /rooms/{room}/members/{user}/interests`. */
export interface MemberInterests { user: string; interests: string[] }

/** A token of the room (never its secret). */
export interface TokenInfo { id: string; user: string; role: Role; created_at: number; expires_at: number | null; revoked_at: number | null }

/** `GET /rooms/{room}/tokens`: every token, revoked and expired ones included. */
export interface TokenList { tokens: TokenInfo[] }

/** `POST /rooms/{room}/tokens`: the new token's secret (shown once) and its record. */
export interface Issued { token: string; info: TokenInfo }

// ---- The live channel (/rooms/{room}/live) ----

export interface Presence {
  user: string
  display_name: string
  role: Role
  status: string
  connections: number
  since: number
  muted_until: number | null
}

/** The first frame of every connection. */
export interface Hello {
  protocol: number
  room: string
  connection_id: number
  you: { user: string; display_name: string; role: Role; token_expires_at: number | null; muted_until: number | null }
  presence: Presence[]
  state: { locked: boolean; lock_reason: string | null; announcement: Announcement | null }
}

/** A chat message (`chat.message`, `chat.edited`, `chat.deleted`, history). */
export interface Message { id: number; user: string; body: string; created_at: number; edited_at: number | null; deleted_at: number | null; deleted_by: string | null }

/** The result of `chat.history`. */
export interface ChatPage { messages: Message[] }

export interface Reservation { task_id: number; created_at: number; expires_at: number; cap_at: number }
export interface Task { id: number; external_id: string; data: Record<string, unknown> }
export interface Mine { reservation: Reservation; task: Task }
export interface Progress {
  answers: number
  pending_earnings: number
  earnings?: { pending: number; approved: number; paid: number; rejected: number; disputed: number; hourly_rate: number | null } | null
}

/** The result of `queue.get`. */
export interface QueueState { counts: Counts; mine: Mine | null; progress: Progress }

/** The `queue.mine` event: my reservation changed. */
export interface QueueMine { mine: Mine | null; progress: Progress }

/** The result of `task.request`: a task, or why none (`reason`, and `why` for a pause). */
export interface TaskOffer { reservation: Reservation | null; task?: Task; reason?: string; why?: string | null }

/** The result of `task.heartbeat`. */
export interface Heartbeat { task_id: number; expires_at: number }

/** The result of `task.submit`: a gold verdict, and a pause it caused. */
export interface Submitted { correct: boolean | null; paused: string | null }

/** `presence.left`. */
export interface PresenceLeft { user: string }

/** `room.locked`. */
export interface RoomLocked { locked: boolean; reason: string | null; by: string; at: number }

/** `member.muted`: `until` null when the mute was lifted. */
export interface MemberMuted { user: string; until: number | null; by: string; reason: string | null }

/** `worker.paused`, to the worker. */
export interface WorkerPaused { paused: boolean; reason: string | null }

/** `task.expired`, to the worker who held it. */
export interface TaskExpired { task_id: number }

/** `task.released`, to the worker a moderator freed. */
export interface TaskReleased { task_id: number; by: string }

/** `pay.alert`, to moderators: the room's hourly rate fell below the target. */
export interface PayAlert { hourly_rate: number | null; target_hourly_rate: number }

/** `you.kicked` and `you.banned`, just before the server closes the socket. */
export interface Removed { by: string; reason: string | null }
