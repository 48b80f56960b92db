// Tasks, for the core team: the room's tasks paged by id and by state,
// found by their id (the imported one or the room's number); one task's
// page with its data, every answer with its worker and lead time, the
// decision, the review trail and a link into the review view. Only the
// public REST API (docs/API.md, the task listing and task detail).

import { ApiError, type KeyEntry, api, entryFor, isTeam } from './api'
import { field, h, mount } from './dom'
import { answerText, dateTime, duration, percent } from './format'
import { type View, refusedView, topbar } from './layout'
import type { TaskDetail, TaskList, TaskRow } from './wire'

/** Tasks per page. */
const PAGE = 50
const STATES = ['', 'open', 'complete', 'review'] as const

export function tasksView(room: string, task: number | null): View {
  const entry = entryFor(room)
  if (!entry || !isTeam(entry.role)) return refusedView(room, entry ?? null, 'tasks', 'Only owners, moderators and the core team list tasks.')
  return task === null ? new TaskListPage(entry) : new TaskPage(entry, task)
}

function message(error: unknown): string {
  return error instanceof ApiError ? error.message : (error as Error).message
}

class TaskListPage implements View {
  readonly element = h('div', { class: 'page' })
  private rows = h('tbody')
  private state = h('select', { id: 'tasks-state' }, STATES.map((state) => h('option', { value: state }, state || 'every state'))) as HTMLSelectElement
  private search = h('input', { id: 'tasks-search', type: 'search', autocomplete: 'off' }) as HTMLInputElement
  private status = h('p', { role: 'status', 'aria-live': 'polite' })
  private more = h('button', { type: 'button', class: 'secondary', hidden: true }, 'More tasks')
  private shown: TaskRow[] = []

  constructor(private readonly entry: KeyEntry) {
    this.state.addEventListener('change', () => void this.load(false))
    this.more.addEventListener('click', () => void this.load(true))
    const find = h('form', { class: 'task-search', role: 'search' },
      field('tasks-search', 'Find a task by its id', this.search), h('button', { type: 'submit' }, 'Find'))
    find.addEventListener('submit', (event) => {
      event.preventDefault()
      void this.find(this.search.value.trim())
    })
    mount(this.element, topbar(entry, 'tasks'),
      h('main', { class: 'narrow tasks' },
        h('h1', null, 'Tasks'),
        h('section', { class: 'panel', 'aria-label': 'Filter' }, field('tasks-state', 'State', this.state), find, this.status),
        h('section', { class: 'panel', 'aria-label': 'Tasks' },
          h('table', { class: 'table' },
            h('caption', null, 'Tasks by id'),
            h('thead', null, h('tr', null, ...['Id', 'State', 'Answers', 'Consensus', 'Confidence'].map((name) => h('th', { scope: 'col' }, name)))),
            this.rows),
          this.more)))
    void this.load(false)
  }

  destroy(): void {}

  private async load(more: boolean): Promise<void> {
    const after = more && this.shown.length > 0 ? this.shown[this.shown.length - 1].id : 0
    const state = this.state.value ? `&state=${this.state.value}` : ''
    try {
      const { tasks } = await api<TaskList>(this.entry.token, 'GET', `/rooms/${this.entry.room}/tasks?after=${after}&limit=${PAGE}${state}`)
      this.shown = more ? [...this.shown, ...tasks] : tasks
      this.more.hidden = tasks.length < PAGE
      this.render()
    } catch (error) {
      this.status.textContent = `The tasks could not be loaded: ${message(error)}`
    }
  }

  /** The imported id among the tasks listed so far (then on the next pages), or the room's number. */
  private async find(id: string): Promise<void> {
    if (!id) return
    let after = 0
    for (;;) {
      const { tasks } = await api<TaskList>(this.entry.token, 'GET', `/rooms/${this.entry.room}/tasks?after=${after}&limit=1000`)
      const found = tasks.find((task) => task.external_id === id || String(task.id) === id)
      if (found) {
        location.hash = `#/tasks/${this.entry.room}/${found.id}`
        return
      }
      if (tasks.length < 1000) break
      after = tasks[tasks.length - 1].id
    }
    this.status.textContent = `No task with the id ${id}.`
  }

  private render(): void {
    if (this.shown.length === 0) {
      mount(this.rows, h('tr', null, h('td', { colSpan: 5 }, 'No tasks here yet.')))
      return
    }
    mount(this.rows, this.shown.map((task) => h('tr', { 'data-task': String(task.id) },
      h('td', null, h('a', { href: `#/tasks/${this.entry.room}/${task.id}` }, task.external_id)),
      h('td', null, task.state),
      h('td', null, `${task.answered} of ${task.overlap_target}`),
      h('td', null, task.consensus === null ? '' : answerText(task.consensus)),
      h('td', null, task.confidence === null ? '' : percent(task.confidence)))))
  }
}

class TaskPage implements View {
  readonly element = h('div', { class: 'page' })

  constructor(private readonly entry: KeyEntry, private readonly task: number) {
    mount(this.element, topbar(entry, 'tasks'), h('main', { class: 'narrow tasks' }, h('p', null, 'Loading the task…')))
    void this.load()
  }

  destroy(): void {}

  private async load(): Promise<void> {
    try {
      const detail = await api<TaskDetail>(this.entry.token, 'GET', `/rooms/${this.entry.room}/tasks/${this.task}`)
      this.render(detail)
    } catch (error) {
      mount(this.element, topbar(this.entry, 'tasks'), h('main', { class: 'narrow' }, h('p', { role: 'alert' }, `The task could not be loaded: ${message(error)}`)))
    }
  }

  private render({ task, answers, reviews }: TaskDetail): void {
    const back = h('a', { href: `#/tasks/${this.entry.room}` }, 'All tasks')
    const decision = task.consensus === null
      ? h('p', null, task.state === 'open' ? 'Not decided yet.' : `State: ${task.state}.`)
      : h('p', { 'data-consensus': '' }, `Decided: ${answerText(task.consensus)} (${task.method ?? 'unknown method'}, confidence ${task.confidence === null ? '–' : percent(task.confidence)}; state ${task.state}).`)
    mount(this.element, topbar(this.entry, 'tasks'),
      h('main', { class: 'narrow tasks' },
        h('p', null, back),
        h('h1', null, `Task ${task.external_id}`),
        h('section', { class: 'panel', 'aria-labelledby': 'task-data' },
          h('h2', { id: 'task-data' }, 'Data'),
          h('pre', { class: 'task-data' }, JSON.stringify(task.data, null, 2)),
          task.gold !== undefined && task.gold !== null ? h('p', null, `Gold answer: ${answerText(task.gold)}`) : null),
        h('section', { class: 'panel', 'aria-labelledby': 'task-decision' },
          h('h2', { id: 'task-decision' }, 'Decision'), decision,
          h('p', null, h('a', { href: `#/review/${this.entry.room}/${task.id}` }, 'Open in the review view'))),
        h('section', { class: 'panel', 'aria-labelledby': 'task-answers' },
          h('h2', { id: 'task-answers' }, `Answers (${answers.length} of ${task.overlap_target})`),
          answers.length === 0 ? h('p', null, 'No answers yet.') : h('table', { class: 'table' },
            h('thead', null, h('tr', null, ...['Worker', 'Answer', 'Lead time', 'When'].map((name) => h('th', { scope: 'col' }, name)))),
            h('tbody', null, answers.map((answer) => h('tr', { 'data-answer': String(answer.answer_id) },
              h('td', null, answer.worker), h('td', null, answerText(answer.answer)),
              h('td', null, duration(answer.lead_time_ms)), h('td', null, dateTime(answer.created_at))))))),
        h('section', { class: 'panel', 'aria-labelledby': 'task-reviews' },
          h('h2', { id: 'task-reviews' }, 'Review trail'),
          reviews.length === 0 ? h('p', null, 'Not reviewed.') : h('ol', null, reviews.map((review) =>
            h('li', null, `${dateTime(review.at)}: ${review.decision} by ${review.reviewer}${review.reason ? ` — “${review.reason}”` : ''}`))))))
  }
}
