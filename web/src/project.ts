// The project page, for owners and moderators (those who may `PUT
// …/project`): the form of every setting (projectform.ts), loaded from
// `GET …/project`. Saving first asks the server what the change does to
// the work already in the room (`POST …/project/preview`); when the room
// has tasks or members lose a required skill, that is shown and must be
// confirmed before `PUT …/project`. A refusal names its setting, and the
// message is shown next to it with the focus moved there.

import { ApiError, type KeyEntry, api, entryFor, isModerator } from './api'
import { h, mount, toast } from './dom'
import { money } from './format'
import { type View, refusedView, topbar } from './layout'
import { type Problem, ProjectForm, settingName } from './projectform'
import type { Project, ProjectPreview } from './wire'

export function projectView(room: string): View {
  const entry = entryFor(room)
  if (!entry || !isModerator(entry.role)) return refusedView(room, entry ?? null, 'project', 'Only owners and moderators configure the project.')
  return new ProjectPage(entry)
}

class ProjectPage implements View {
  readonly element = h('div', { class: 'page' })
  private body = h('div')
  private confirm = h('section', { class: 'panel preview-panel', 'aria-labelledby': 'change-title', hidden: true })
  private status = h('p', { role: 'status', class: 'muted', id: 'project-status' })
  private summary = h('p', { role: 'alert', class: 'error', hidden: true })
  private form: ProjectForm | null = null
  private busy = false

  constructor(private readonly entry: KeyEntry) {
    mount(this.element, topbar(entry, 'project'),
      h('main', { class: 'narrow project' }, h('h1', null, 'Project'),
        h('p', { class: 'muted' }, `How tasks in ${entry.room_name} are answered, checked and paid.`),
        this.summary, this.body, this.confirm, this.status))
    void this.load()
  }

  destroy(): void {}

  private async load(): Promise<void> {
    try {
      const project = await api<Project>(this.entry.token, 'GET', `/rooms/${this.entry.room}/project`)
      this.form = new ProjectForm(project, () => void this.submit())
      mount(this.body, this.form.element)
    } catch (error) {
      mount(this.body, h('p', { role: 'alert' }, `The project could not be loaded: ${(error as Error).message}`))
    }
  }

  /** Shows a refusal next to its setting, or above the form when it names none. */
  private refused(problem: Problem | { field: null; message: string }): void {
    if (problem.field && this.form?.showError(problem.field, problem.message)) return
    this.summary.textContent = problem.message
    this.summary.hidden = false
  }

  private clear(): void {
    this.form?.clearErrors()
    this.summary.hidden = true
    this.confirm.hidden = true
    this.status.textContent = ''
  }

  private async submit(): Promise<void> {
    if (!this.form || this.busy) return
    this.clear()
    const project = this.form.read()
    if ('field' in project) return this.refused(project)
    this.busy = true
    try {
      const preview = await api<ProjectPreview>(this.entry.token, 'POST', `/rooms/${this.entry.room}/project/preview`, project)
      if (preview.tasks.total === 0 && preview.newly_lacking_skills.count === 0) await this.save(project)
      else this.ask(project, preview)
    } catch (error) {
      this.failed(error)
    } finally {
      this.busy = false
    }
  }

  private failed(error: unknown): void {
    if (error instanceof ApiError) this.refused({ field: error.field, message: error.message })
    else this.refused({ field: null, message: (error as Error).message })
  }

  private async save(project: Project): Promise<void> {
    const saved = await api<Project>(this.entry.token, 'PUT', `/rooms/${this.entry.room}/project`, project)
    this.confirm.hidden = true
    this.form = new ProjectForm(saved, () => void this.submit())
    mount(this.body, this.form.element)
    this.status.textContent = 'Project saved.'
    toast('Project saved.')
    this.element.querySelector<HTMLElement>('#project-save')?.focus()
  }

  /** Shows what saving does to the room's work, and asks to confirm. */
  private ask(project: Project, preview: ProjectPreview): void {
    const confirm = h('button', { type: 'button', class: 'primary', id: 'confirm-save', onClick: () => {
      if (this.busy) return
      this.busy = true
      this.save(project).catch((error) => this.failed(error)).finally(() => (this.busy = false))
    } }, 'Save these changes')
    const back = h('button', { type: 'button', onClick: () => {
      this.confirm.hidden = true
      this.element.querySelector<HTMLElement>('#project-save')?.focus()
    } }, 'Keep editing')
    const title = h('h2', { id: 'change-title', tabIndex: -1 }, 'What this changes for tasks already imported')
    mount(this.confirm, title, h('ul', { class: 'change-list' }, effects(project, preview)), h('div', { class: 'row actions' }, confirm, back))
    this.confirm.hidden = false
    title.focus()
  }
}

/** One sentence per effect of the change, each marked with what it counts (`data-effect`). */
function effects(project: Project, preview: ProjectPreview): HTMLElement[] {
  const item = (effect: string, text: string) => h('li', { 'data-effect': effect }, text)
  const tasks = (count: number) => `${count} task${count === 1 ? '' : 's'}`
  const list = (names: string[], count: number) => `${names.join(', ')}${count > names.length ? ` and ${count - names.length} more` : ''}`
  const { tasks: tally } = preview
  const lines = [
    item('changed', preview.changed.length ? `Changed: ${preview.changed.map(settingName).join(', ')}.` : 'No setting changed.'),
    item('tasks', `The room has ${tasks(tally.total)}: ${tally.open} open, ${tally.complete} complete, ${tally.review} in review, ${tally.gold} gold.`),
  ]
  if (preview.overlap_kept) lines.push(item('overlap_kept', `${tasks(preview.overlap_kept)} open keep their overlap target; only tasks imported from now on start at ${project.overlap_min} answers.`))
  if (preview.overlap_capped) lines.push(item('overlap_capped', `${tasks(preview.overlap_capped)} open now go to review at their target if their answers disagree, instead of getting one more answer (the maximum is now ${project.overlap_max}).`))
  if (preview.overlap_extended) lines.push(item('overlap_extended', `${tasks(preview.overlap_extended)} open may now get more answers before review (up to ${project.overlap_max}).`))
  if (preview.review_kept) lines.push(item('review_kept', `${tasks(preview.review_kept)} in review stay there: a decided task is not reopened.`))
  if (preview.decided_by_new_rules) lines.push(item('decided_by_new_rules', `${tasks(preview.decided_by_new_rules)} open will be decided by the new confidence or schema; decided tasks keep their decision.`))
  if (preview.answered_under_old_schema) lines.push(item('answered_under_old_schema', `${tasks(preview.answered_under_old_schema)} open already have answers given under the old schema; they are kept and counted as given.`))
  if (preview.gold_misfits.count) lines.push(item('gold_misfits', `${tasks(preview.gold_misfits.count)} of gold have an answer that does not fit the new schema (ids ${list(preview.gold_misfits.first.map(String), preview.gold_misfits.count)}).`))
  if (preview.newly_lacking_skills.count) lines.push(item('newly_lacking_skills', `${list(preview.newly_lacking_skills.first, preview.newly_lacking_skills.count)} lack a required skill and get no new task${preview.reservations_kept ? `; they may still answer the ${preview.reservations_kept} task${preview.reservations_kept === 1 ? '' : 's'} they hold` : ''}.`))
  if (preview.newly_qualified.count) lines.push(item('newly_qualified', `${list(preview.newly_qualified.first, preview.newly_qualified.count)} now have every required skill and may take tasks.`))
  if (preview.changed.includes('pay_per_answer')) lines.push(item('pay', `Answers from now on pay ${money(project.pay_per_answer)}; answers already booked keep their pay.`))
  lines.push(item('now', 'Nothing is decided at the moment of saving: the new settings apply to the next grants, answers and decisions.'))
  return lines
}
