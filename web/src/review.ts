// The review view (core, moderator, owner): tasks waiting in `review` and
// the recently completed ones; for one task, the consensus beside the
// individual answers, and the correction, co-edited live in the team's
// shared document `task-{id}` (the server writes its consensus and the
// review decision into the same document, shown here as they change).

import { ApiError, type KeyEntry, api, entryFor, isModerator, isTeam } from './api'
import { RoomState, chatBlock, stoppedPage } from './banners'
import { ChatPanel } from './chat'
import { h, mount, toast, userColor } from './dom'
import { Editor } from './editor'
import { answerText, dateTime, duration, percent } from './format'
import { type View, docIndicator, liveIndicator, topbar } from './layout'
import { LiveClient, type Stopped } from './live'
import { PresenceStore, presenceList } from './presence'
import { answerFrom, isEmptyAnswer, labels, review, writeAnswer } from './schema'
import { workingCopy } from './room'
import { SharedDoc } from './ydoc'
import type { Project, TaskDetail, TaskList, TaskRow } from './wire'

export function reviewView(room: string, taskId: number | null, watched: string | null = null): View {
  const entry = entryFor(room)
  if (!entry || !isTeam(entry.role)) {
    const element = h('div', { class: 'page' }, topbar(entry ?? null, 'review'),
      h('main', { class: 'narrow' }, h('p', null, entry ? 'Only the core team, moderators and owners review tasks.' : `No token for room ${room}. `, h('a', { href: '#/' }, 'Back to my rooms'))))
    return { element, destroy: () => undefined }
  }
  return new ReviewPage(entry, taskId, watched)
}

class ReviewPage implements View {
  readonly element = h('div', { class: 'page' })
  private live: LiveClient
  private state: RoomState
  private presence: PresenceStore
  private chat: ChatPanel
  private project: Project | null = null
  private lists = h('nav', { class: 'panel task-lists', 'aria-label': 'Tasks to review' })
  private detail = h('section', { class: 'panel review-detail', 'aria-labelledby': 'review-title' })
  private docSlot = h('span')
  private shared: SharedDoc | null = null
  private editor: Editor | null = null
  private taskDetail: TaskDetail | null = null
  /** False when the server had no task detail endpoint (answers unknown). */
  private answersKnown = true
  private refreshTimer = 0

  /** `watched`: a member whose working copy `task-{id}:{user}` I open (coaching) instead of the team's document. */
  constructor(private readonly entry: KeyEntry, private readonly taskId: number | null, private readonly watched: string | null) {
    this.live = new LiveClient(entry.room, entry.token)
    this.state = new RoomState(this.live, entry.user, isModerator(entry.role))
    this.presence = new PresenceStore(this.live)
    this.chat = new ChatPanel(this.live, this.presence, { user: entry.user, moderator: isModerator(entry.role) }, () => chatBlock(this.state, entry.role))
    this.state.onChange(() => {
      this.chat.refresh()
      this.editor?.refresh()
    })
    this.live.on('stopped', (stopped: Stopped) => {
      this.shared?.provider.disconnect()
      mount(this.element, topbar(null, 'review'), stoppedPage(stopped.kind, entry.room_name, stopped.detail, null))
    })
    // The review count moves when tasks settle: refresh the lists, at most every 2 s.
    this.live.on('queue.counts', () => {
      clearTimeout(this.refreshTimer)
      this.refreshTimer = window.setTimeout(() => this.loadLists(), 2000)
    })
    mount(this.element,
      topbar(entry, 'review', [liveIndicator(this.live), this.docSlot]),
      this.state.element,
      h('main', { class: 'review-grid' },
        h('h1', { class: 'visually-hidden' }, `Review in ${entry.room_name}`),
        h('div', { class: 'col-queue' }, this.lists),
        h('div', { class: 'col-task' }, this.detail),
        h('div', { class: 'col-side' }, presenceList(this.presence, this.live, entry.user), this.chat.element)))
    mount(this.detail, h('h2', { id: 'review-title' }, 'Review'), h('p', { class: 'muted' }, taskId ? 'Loading…' : 'Pick a task on the left.'))
    void this.load()
  }

  private async load(): Promise<void> {
    try {
      this.project = await api<Project>(this.entry.token, 'GET', `/rooms/${this.entry.room}/project`)
    } catch (error) {
      mount(this.detail, h('p', { class: 'error' }, `Could not load the project: ${(error as Error).message}`))
      return
    }
    await this.loadLists()
    if (this.taskId !== null) await this.openTask(this.taskId)
  }

  private async loadLists(): Promise<void> {
    const path = (state: string) => `/rooms/${this.entry.room}/tasks?state=${state}&limit=1000`
    try {
      const [inReview, complete] = await Promise.all([
        api<TaskList>(this.entry.token, 'GET', path('review')),
        api<TaskList>(this.entry.token, 'GET', path('complete')),
      ])
      const item = (task: TaskRow) =>
        h('li', null, h('a', { href: `#/review/${this.entry.room}/${task.id}`, 'aria-current': task.id === this.taskId ? 'page' : null, 'data-task': task.id },
          h('b', null, task.external_id), ' ', h('span', { class: `state state-${task.state}` }, task.state),
          h('small', { class: 'muted' }, ` ${answerText(task.consensus)} · ${percent(task.confidence)}`)))
      mount(this.lists,
        h('h2', null, `In review (${inReview.tasks.length})`),
        inReview.tasks.length ? h('ul', { class: 'task-list', 'data-list': 'review' }, inReview.tasks.map(item)) : h('p', { class: 'muted' }, 'Nothing waits for review.'),
        h('h2', null, 'Recently complete'),
        complete.tasks.length ? h('ul', { class: 'task-list', 'data-list': 'complete' }, complete.tasks.slice(-20).reverse().map(item)) : h('p', { class: 'muted' }, 'None yet.'))
    } catch (error) {
      mount(this.lists, h('p', { class: 'error' }, `Could not load tasks: ${(error as Error).message}`))
    }
  }

  private async openTask(taskId: number): Promise<void> {
    try {
      this.taskDetail = await api<TaskDetail>(this.entry.token, 'GET', `/rooms/${this.entry.room}/tasks/${taskId}`)
      this.answersKnown = true
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 404 || error.code !== 'not_found') throw error
      // Before the task detail endpoint existed: find the task in the listings.
      const all = await api<TaskList>(this.entry.token, 'GET', `/rooms/${this.entry.room}/tasks?after=${taskId - 1}&limit=1`)
      const task = all.tasks.find((candidate) => candidate.id === taskId)
      if (!task) {
        mount(this.detail, h('h2', { id: 'review-title' }, 'Review'), h('p', { class: 'error' }, `Task ${taskId} not found.`))
        return
      }
      this.taskDetail = { task, answers: [], reviews: [] }
      this.answersKnown = false
    }
    const task = this.taskDetail.task
    if (!this.shared) {
      const name = this.watched ? workingCopy(task.id, this.watched) : `task-${task.id}`
      this.shared = new SharedDoc(this.entry.room, name, this.entry.token, this.entry)
      mount(this.docSlot, docIndicator(this.shared, this.watched ? 'Working copy' : 'Correction'))
      this.editor = new Editor({
        shared: this.shared,
        schema: this.project!.answer_schema,
        styles: this.project!.label_styles,
        task,
        me: this.entry,
        canEdit: () => !this.state.lockedForMe,
      })
      const rerender = () => this.renderServerState()
      labels(this.shared.doc).observe(rerender)
      review(this.shared.doc).observe(rerender)
      this.shared.provider.on('sync', rerender)
    }
    this.renderDetail()
  }

  private serverState = h('div', { class: 'server-state', 'aria-live': 'polite' })

  /** What the server wrote into the shared document: consensus and review. */
  private renderServerState(): void {
    if (!this.shared) return
    const map = labels(this.shared.doc)
    const decision = review(this.shared.doc)
    const task = this.taskDetail?.task
    const consensus = map.has('consensus') ? map.get('consensus') : task?.consensus
    const confidence = (map.get('confidence') as number | undefined) ?? task?.confidence
    const method = (map.get('method') as string | undefined) ?? task?.method
    const state = (map.get('state') as string | undefined) ?? task?.state
    const chip = this.detail.querySelector('#review-title .state')
    if (chip && state) {
      chip.textContent = state
      chip.className = `state state-${state}`
    }
    const accept = this.detail.querySelector<HTMLButtonElement>('#accept')
    if (accept) accept.disabled = consensus === null || consensus === undefined
    mount(this.serverState,
      h('dl', { class: 'stats' },
        h('div', null, h('dt', null, 'Consensus'), h('dd', { 'data-consensus': '' }, answerText(consensus))),
        h('div', null, h('dt', null, 'Confidence'), h('dd', null, percent(confidence))),
        h('div', null, h('dt', null, 'Method'), h('dd', null, method ?? '–')),
        h('div', null, h('dt', null, 'State'), h('dd', { 'data-task-state': '' }, state ?? '–'))),
      decision.has('state')
        ? h('p', { class: 'banner banner-info', 'data-review-state': String(decision.get('state')) },
            h('strong', null, `Review: ${decision.get('state')}`), ` by ${decision.get('reviewer')}`,
            decision.get('reason') ? ` — “${decision.get('reason')}”` : '', ` (${dateTime(decision.get('at') as number)})`)
        : null)
  }

  private renderDetail(): void {
    const detail = this.taskDetail!
    const task = detail.task
    const schema = this.project!.answer_schema
    const reason = h('input', { id: 'reject-reason', type: 'text', maxLength: 1000, placeholder: 'Why is it rejected?' })
    const answersTable = detail.answers.length
      ? h('table', { class: 'table' },
          h('caption', null, 'Individual answers'),
          h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Worker'), h('th', { scope: 'col' }, 'Answer'), h('th', { scope: 'col' }, 'Lead time'), h('th', { scope: 'col' }, ''))),
          h('tbody', null, detail.answers.map((answer) => h('tr', null,
            h('td', null, h('span', { style: { color: userColor(answer.worker) } }, answer.worker)),
            h('td', null, answerText(answer.answer)),
            h('td', null, duration(answer.lead_time_ms)),
            h('td', null, this.watched ? null : h('button', { type: 'button', class: 'link', 'aria-label': `Start the correction from ${answer.worker}'s answer`, onClick: () => this.startFrom(answer.answer) }, 'Use'),
              h('a', { href: `#/review/${this.entry.room}/${task.id}/${answer.worker}`, 'aria-label': `Open ${answer.worker}'s working copy` }, 'Working copy'))))))
      : h('p', { class: 'muted' }, this.answersKnown ? 'No answers yet.' : 'The individual answers are not available.')
    const trail = detail.reviews.length
      ? h('ul', { class: 'trail' }, detail.reviews.map((entry) => h('li', null, `${dateTime(entry.at)} ${entry.reviewer}: ${entry.decision}${entry.reason ? ` (“${entry.reason}”)` : ''}`)))
      : null
    mount(this.detail,
      h('h2', { id: 'review-title' }, `Task ${task.external_id}`, ' ', h('span', { class: `state state-${task.state}` }, task.state)),
      h('p', { class: 'muted' }, `${task.answered} of ${task.overlap_target} answers`),
      h('div', { class: 'two-up' },
        h('div', null, h('h3', { class: 'sub' }, 'Consensus (live)'), this.serverState, trail),
        h('div', null, answersTable)),
      this.watchForm(task.id),
      this.watched
        ? h('p', { class: 'banner banner-info', 'data-watching': this.watched }, `You are in ${this.watched}’s working copy: they see your cursor and edits. `, h('a', { href: `#/review/${this.entry.room}/${task.id}` }, 'Back to the team’s correction'))
        : h('h3', { class: 'sub' }, 'Correction (shared with the team)'),
      this.watched ? null : h('div', { class: 'row' },
        h('button', { type: 'button', onClick: () => this.startFrom(labels(this.shared!.doc).get('consensus') ?? task.consensus) }, 'Start from the consensus')),
      this.editor!.element,
      this.watched ? null : h('div', { class: 'decide', role: 'group', 'aria-label': 'Decision' },
        h('button', { type: 'button', class: 'primary', id: 'accept', disabled: task.consensus === null, onClick: () => this.decide({ decision: 'accept' }) }, 'Accept consensus'),
        h('button', { type: 'button', id: 'correct', onClick: () => {
          const derived = answerFrom(this.shared!.doc, schema)
          if ('missing' in derived) toast(`The correction is incomplete: ${derived.missing}.`, 'error')
          else void this.decide({ decision: 'correct', answer: derived.answer })
        } }, 'Submit correction'),
        h('span', { class: 'reject' },
          h('label', { for: 'reject-reason' }, 'Reason '), reason,
          h('button', { type: 'button', class: 'danger', id: 'reject', onClick: () => {
            if (!reason.value.trim()) {
              toast('A rejection needs a reason.', 'error')
              reason.focus()
            } else void this.decide({ decision: 'reject', reason: reason.value.trim() })
          } }, 'Reject'))))
    this.renderServerState()
  }

  /** Coaching: open a member's working copy of this task by their user id. */
  private watchForm(taskId: number): HTMLElement {
    const user = h('input', { id: 'watch-user', type: 'text', placeholder: 'user id', pattern: '[A-Za-z0-9_.\\-]{1,64}', value: this.watched ?? '' })
    return h('form', { class: 'row watch-form', onSubmit: (event: Event) => {
      event.preventDefault()
      if (user.value.trim()) location.hash = `#/review/${this.entry.room}/${taskId}/${encodeURIComponent(user.value.trim())}`
    } }, h('label', { for: 'watch-user' }, 'Open a member’s working copy'), user, h('button', { type: 'submit' }, 'Open'))
  }

  private startFrom(answer: unknown): void {
    if (!this.shared || !this.project) return
    if (!isEmptyAnswer(this.shared.doc) && !confirm('Replace the correction in progress?')) return
    writeAnswer(this.shared.doc, this.project.answer_schema, answer, this.entry.user)
  }

  private async decide(body: Record<string, unknown>): Promise<void> {
    const task = this.taskDetail!.task
    try {
      await api(this.entry.token, 'POST', `/rooms/${this.entry.room}/tasks/${task.id}/review`, body)
      toast(`Task ${task.external_id}: ${body.decision} recorded.`)
      await this.openTask(task.id)
      await this.loadLists()
    } catch (error) {
      toast(`Not recorded: ${(error as Error).message}`, 'error')
    }
  }

  destroy(): void {
    clearTimeout(this.refreshTimer)
    this.editor?.destroy()
    this.shared?.destroy()
    this.live.close()
  }
}
