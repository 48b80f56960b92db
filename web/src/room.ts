// The room view: the worker's page. The queue on the left, the current
// task in the middle (answered in my own working copy `task-{id}:{user}`,
// never in the team's `task-{id}`, because crowd answers must be
// independent), people and chat on the right. Kicks, bans and revocations
// replace the page with one that says what happened.

import { api, type KeyEntry, entryFor, isModerator, removeRoom, updateEntry } from './api'
import { RoomState, chatBlock, stoppedPage } from './banners'
import { ChatPanel } from './chat'
import { h, mount, toast } from './dom'
import { Editor } from './editor'
import { money } from './format'
import { type View, docIndicator, liveIndicator, topbar } from './layout'
import { LiveClient, type Stopped } from './live'
import { PresenceStore, presenceList } from './presence'
import { QueuePanel } from './queue'
import { renderMarkdown } from './markdown'
import { answerFrom, ensureMeta } from './schema'
import { SharedDoc } from './ydoc'
import type { Hello, Project, Submitted, WorkerRecord } from './wire'

/** The document a member answers a task in. */
export const workingCopy = (taskId: number, user: string) => `task-${taskId}:${user}`

export function roomView(room: string): View {
  const entry = entryFor(room)
  const root = h('div', { class: 'page' })
  if (!entry) {
    mount(root, topbar(null, 'room'), h('main', { class: 'narrow' }, h('p', null, `No token for room ${room} in this browser session. `, h('a', { href: '#/' }, 'Add one'), '.')))
    return { element: root, destroy: () => undefined }
  }
  return new RoomPage(entry, root)
}

class RoomPage implements View {
  private live: LiveClient
  private state: RoomState
  private presence: PresenceStore
  private chat: ChatPanel
  private queue: QueuePanel
  private project: Project | null = null
  private shared: SharedDoc | null = null
  private editor: Editor | null = null
  private docSlot = h('span')
  private taskArea = h('section', { class: 'panel task', 'aria-labelledby': 'task-title' })
  private submitting = false

  constructor(private entry: KeyEntry, readonly element: HTMLElement) {
    this.live = new LiveClient(entry.room, entry.token)
    this.state = new RoomState(this.live, entry.user, isModerator(entry.role))
    this.presence = new PresenceStore(this.live)
    this.chat = new ChatPanel(this.live, this.presence, { user: entry.user, moderator: isModerator(entry.role) }, () => chatBlock(this.state, this.entry.role))
    this.queue = new QueuePanel(this.live, {
      canWork: () => {
        if (this.entry.role === 'viewer') return 'Viewers do not take tasks.'
        if (this.state.paused) return `You are paused: ${this.state.paused}`
        if (this.state.lockedForMe) return 'The room is locked.'
        return null
      },
      onTaken: () => this.focusTask(),
    })
    this.live.on('hello', (hello: Hello) => {
      if (hello.you.role !== this.entry.role) {
        updateEntry(this.entry.room, { role: hello.you.role })
        this.entry = { ...this.entry, role: hello.you.role }
      }
    })
    this.live.on('stopped', (stopped: Stopped) => this.stopped(stopped))
    this.state.onChange(() => {
      this.chat.refresh()
      this.queue.render()
      this.editor?.refresh()
    })
    this.queue.onChange(() => this.showTask())
    this.layout()
    this.loadProject()
  }

  private layout(): void {
    mount(this.element,
      topbar(this.entry, 'room', [liveIndicator(this.live), this.docSlot]),
      this.state.element,
      h('main', { class: 'room-grid' },
        h('h1', { class: 'visually-hidden' }, `Work in ${this.entry.room_name}`),
        h('div', { class: 'col-queue' }, this.queue.element),
        h('div', { class: 'col-task' }, this.taskArea),
        h('div', { class: 'col-side' }, presenceList(this.presence, this.live, this.entry.user), this.chat.element)))
    this.showTask()
  }

  private async loadProject(): Promise<void> {
    try {
      this.project = await api<Project>(this.entry.token, 'GET', `/rooms/${this.entry.room}/project`)
      this.queue.ttlSeconds = this.project.reservation_ttl_seconds
      if (this.entry.role !== 'viewer') {
        const record = await api<WorkerRecord>(this.entry.token, 'GET', `/rooms/${this.entry.room}/workers/${this.entry.user}`).catch(() => null)
        if (record?.paused) {
          this.state.paused = record.paused
          this.state.changed()
        }
      }
      this.showTask()
    } catch (error) {
      mount(this.taskArea, h('p', { class: 'error' }, `Could not load the project: ${(error as Error).message}`))
    }
  }

  /** Opens (or closes) the working copy of the task I hold. */
  private showTask(): void {
    const mine = this.queue.mine
    const project = this.project
    if (this.shared && (!mine || this.shared.name !== workingCopy(mine.task.id, this.entry.user))) {
      this.editor?.destroy()
      this.shared.destroy()
      this.editor = null
      this.shared = null
      mount(this.docSlot)
    }
    if (!project) {
      mount(this.taskArea, h('h2', { id: 'task-title' }, 'Task'), h('p', { class: 'muted' }, 'Loading the project…'))
      return
    }
    if (!mine) {
      mount(this.taskArea,
        h('h2', { id: 'task-title' }, 'Task'),
        instructionsOf(project),
        h('p', { class: 'muted empty-task' }, 'No task reserved. Press “Get a task” to start.'),
        h('p', { class: 'muted' }, `Each answer pays ${money(project.pay_per_answer)}.`))
      return
    }
    if (!this.shared) {
      this.shared = new SharedDoc(this.entry.room, workingCopy(mine.task.id, this.entry.user), this.entry.token, this.entry)
      const shared = this.shared
      shared.provider.once('sync', () => ensureMeta(shared.doc, mine.task.id))
      mount(this.docSlot, docIndicator(shared, 'Answer'))
      this.editor = new Editor({
        shared,
        schema: project.answer_schema,
        styles: project.label_styles,
        task: mine.task,
        me: this.entry,
        canEdit: () => this.entry.role !== 'viewer' && !this.state.lockedForMe,
      })
    }
    mount(this.taskArea,
      h('h2', { id: 'task-title' }, `Task ${mine.task.external_id}`),
      instructionsOf(project),
      this.editor!.element,
      h('div', { class: 'row actions' },
        h('button', { type: 'button', class: 'primary', id: 'submit-answer', onClick: () => this.submit() }, 'Submit answer'),
        h('button', { type: 'button', onClick: () => this.skip() }, 'Skip')))
  }

  /** After I took a task: the focus goes to where the answer starts (the text to select in, or the first field). */
  private focusTask(): void {
    const field = this.taskArea.querySelector<HTMLElement>('.surface-text, .editor input:not(:disabled), .editor textarea')
    field?.focus()
  }

  /** After my task is gone by my own hand (submitted, skipped): the focus goes to “Get a task”, not to the page's start. */
  private focusQueue(): void {
    const next = this.element.querySelector<HTMLButtonElement>('#get-task')
    if (next && !next.disabled) next.focus()
  }

  private async skip(): Promise<void> {
    await this.queue.skip()
    if (!this.queue.mine) this.focusQueue()
  }

  private async submit(): Promise<void> {
    const mine = this.queue.mine
    if (!mine || !this.shared || !this.project || this.submitting) return
    const derived = answerFrom(this.shared.doc, this.project.answer_schema)
    if ('missing' in derived) {
      toast(`Not yet: ${derived.missing}.`, 'error')
      return
    }
    this.submitting = true
    try {
      const result = await this.live.request<Submitted>('task.submit', { task_id: mine.reservation.task_id, answer: derived.answer })
      const verdict = result.correct === true ? ' Correct!' : result.correct === false ? ' That did not match the expected answer.' : ''
      toast(`Answer submitted.${verdict}`)
      if (result.paused) {
        this.state.paused = result.paused
        this.state.changed()
      }
      this.queue.mine = null
      this.showTask()
      this.queue.render()
      this.focusQueue()
    } catch (error) {
      toast(`Not submitted: ${(error as Error).message}`, 'error')
    } finally {
      this.submitting = false
    }
  }

  private stopped(stopped: Stopped): void {
    this.shared?.provider.disconnect()
    if (stopped.kind !== 'kicked') removeRoom(this.entry.room)
    const rejoin = stopped.kind === 'kicked'
      ? () => {
          this.live.reconnectNow()
          this.shared?.rejoin()
          this.layout()
        }
      : null
    mount(this.element, topbar(null, 'room'), stoppedPage(stopped.kind, this.entry.room_name, stopped.detail, rejoin))
  }

  destroy(): void {
    this.editor?.destroy()
    this.shared?.destroy()
    this.queue.destroy()
    this.live.close()
  }
}

/** The project's instructions, rendered from their Markdown (markdown.ts: no HTML reaches the page). */
function instructionsOf(project: Project): HTMLElement {
  return h('div', { class: 'instructions markdown' }, renderMarkdown(project.instructions))
}
