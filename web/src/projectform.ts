// The project form: one control per setting of the project (server/work/
// src/project.rs), with its error line beside it. The form only reads and
// converts what was typed (numbers, money in currency units to integer
// micro-units); every rule is the server's, whose refusal names the
// setting (`field`, docs/API.md) and is shown by `showError` next to it,
// with the focus moved there. Native validation is off (`noValidate`) so a
// browser bubble never hides the server's message.

import { h } from './dom'
import { microsOf, unitsOf } from './format'
import { renderMarkdown } from './markdown'
import type { AnswerSchema, LabelStyle, Project } from './wire'

type Kind = AnswerSchema['kind']

const KINDS: [Kind, string][] = [
  ['single_choice', 'Single choice (one option)'],
  ['multi_label', 'Multi-label (any options)'],
  ['spans', 'Spans (labelled passages of the text)'],
  ['free_text', 'Free text'],
  ['numeric', 'Number'],
]

/** How a number setting is read: a whole number of at least 0, or a fraction from 0 to 1, or any number. */
type Shape = 'count' | 'unit' | 'any'

/** The number settings, in the order of the form: [field, label, shape, hint]. */
const NUMBERS: Record<string, [string, Shape, string][]> = {
  quality: [
    ['overlap_min', 'count', 'Answers a task gets before its answers are compared.'],
    ['overlap_max', 'count', 'Answers a task may get at most while its answers disagree.'],
    ['min_confidence', 'unit', 'Agreement (0 to 1) a decision needs; below it, another answer or review.'],
    ['gold_rate', 'unit', 'Share of tasks served as gold (0 to 1) once onboarding is done.'],
    ['onboarding_gold', 'count', 'Gold tasks a new worker answers first.'],
    ['min_accuracy', 'unit', 'Gold accuracy (0 to 1) under which a worker is paused.'],
    ['min_lead_time_ms', 'count', 'Answers faster than this many milliseconds count as too fast.'],
  ],
  reservations: [
    ['reservation_ttl_seconds', 'count', 'How long a task stays reserved without a heartbeat, in seconds.'],
    ['reservation_cap_seconds', 'count', 'The longest heartbeats may keep a reservation, in seconds.'],
  ],
  pay: [
    ['auto_approve_seconds', 'count', 'Seconds after which a pending answer is approved by itself.'],
  ],
}

const LABELS: Record<string, string> = {
  overlap_min: 'Overlap: minimum answers',
  overlap_max: 'Overlap: maximum answers',
  min_confidence: 'Minimum confidence',
  gold_rate: 'Gold rate',
  onboarding_gold: 'Onboarding gold tasks',
  min_accuracy: 'Minimum accuracy',
  min_lead_time_ms: 'Minimum lead time (ms)',
  reservation_ttl_seconds: 'Reservation lifetime (s)',
  reservation_cap_seconds: 'Reservation cap (s)',
  auto_approve_seconds: 'Auto-approve delay (s)',
  pay_per_answer: 'Pay per answer',
  target_hourly_rate: 'Target hourly rate',
  required_skills: 'Required skills',
  instructions: 'Instructions (Markdown)',
  answer_schema: 'Answer kind',
  'answer_schema.max_chars': 'Longest answer (characters; empty: 10,000)',
  'answer_schema.min': 'Smallest number (empty: none)',
  'answer_schema.max': 'Largest number (empty: none)',
}

/** The human name of a setting, for the preview's list of changes. */
export function settingName(field: string): string {
  return field === 'label_styles' ? 'Label colours and hotkeys' : field === 'answer_schema' ? 'Answer schema' : (LABELS[field] ?? field).replace(/ \(.*\)$/, '')
}

/** A problem found before anything was sent: the setting and what to do. */
export interface Problem { field: string; message: string }

interface LabelRow { element: HTMLElement; name: HTMLInputElement; colour: HTMLInputElement; hotkey: HTMLInputElement; swatch: HTMLElement; error: HTMLElement }

const idOf = (field: string) => `project-${field.replace(/[^A-Za-z0-9_-]/g, '-')}`

export class ProjectForm {
  readonly element: HTMLFormElement
  /** Each setting's control (the one focused on its error) and error line, by field. */
  private controls = new Map<string, { control: HTMLElement; error: HTMLElement }>()
  private rows: LabelRow[] = []
  private rowList = h('ol', { class: 'label-rows' })
  private rowCount = 0
  private kind: HTMLSelectElement
  private preview = h('div', { class: 'markdown', id: 'instructions-preview' })
  private kindParts: Record<'labels' | 'text' | 'numeric', HTMLElement>

  constructor(project: Project, onSubmit: () => void) {
    const instructions = h('textarea', { id: idOf('instructions'), rows: 6, value: project.instructions, onInput: () => this.renderPreview() }) as HTMLTextAreaElement
    this.kind = h('select', { id: idOf('answer_schema'), onChange: () => this.kindChanged() },
      KINDS.map(([kind, text]) => h('option', { value: kind, selected: kind === project.answer_schema.kind }, text))) as HTMLSelectElement
    const schema = project.answer_schema
    const labels = schema.kind === 'spans' ? schema.labels : schema.kind === 'single_choice' || schema.kind === 'multi_label' ? schema.options : []
    for (const label of labels) this.addRow(label, project.label_styles?.[label] ?? {})
    const addButton = h('button', { type: 'button', class: 'secondary', id: 'project-add-label', onClick: () => this.addRow('', {}, true) }, 'Add a label')
    this.kindParts = {
      labels: h('div', { class: 'kind-part' },
        h('p', { class: 'muted', id: 'labels-help' }, 'Each label or option, with its colour (#rrggbb) and hotkey (one key, not 1–9 or ?) in the work view.'),
        this.rowList, addButton),
      text: this.setting('answer_schema.max_chars', this.input('answer_schema.max_chars', schema.kind === 'free_text' && schema.max_chars != null ? String(schema.max_chars) : '')),
      numeric: h('div', { class: 'kind-part' },
        this.setting('answer_schema.min', this.input('answer_schema.min', schema.kind === 'numeric' && schema.min != null ? String(schema.min) : '')),
        this.setting('answer_schema.max', this.input('answer_schema.max', schema.kind === 'numeric' && schema.max != null ? String(schema.max) : ''))),
    }
    this.controls.set('answer_schema.options', { control: addButton, error: this.labelsError })
    this.controls.set('answer_schema.labels', { control: addButton, error: this.labelsError })
    this.controls.set('label_styles', { control: addButton, error: this.labelsError })
    const numbers = (group: string) => NUMBERS[group].map(([field, , hint]) =>
      this.setting(field, this.input(field, String((project as unknown as Record<string, number>)[field])), hint))
    this.element = h('form', { class: 'project-form', noValidate: true, onSubmit: (event: Event) => {
      event.preventDefault()
      onSubmit()
    } },
      h('fieldset', null, h('legend', null, 'Instructions'),
        this.setting('instructions', instructions, 'Markdown: # headings, **bold**, *italic*, `code`, - lists, > quotes, [links](https://…). HTML is shown as text.'),
        h('section', { class: 'markdown-preview', 'aria-labelledby': 'instructions-preview-title' },
          h('h3', { id: 'instructions-preview-title' }, 'Preview (as workers see it)'), this.preview)),
      h('fieldset', null, h('legend', null, 'Answers'),
        this.setting('answer_schema', this.kind),
        this.kindParts.labels, this.labelsError, this.kindParts.text, this.kindParts.numeric),
      h('fieldset', null, h('legend', null, 'Overlap and quality'), numbers('quality')),
      h('fieldset', null, h('legend', null, 'Reservations'), numbers('reservations')),
      h('fieldset', null, h('legend', null, 'Pay (currency units)'),
        this.setting('pay_per_answer', this.input('pay_per_answer', unitsOf(project.pay_per_answer), 'decimal'), 'What each answer pays, e.g. 0.05.'),
        this.setting('target_hourly_rate', this.input('target_hourly_rate', unitsOf(project.target_hourly_rate), 'decimal'), 'The hourly rate the room should pay at least, e.g. 15.'),
        numbers('pay')),
      h('fieldset', null, h('legend', null, 'Who may work'),
        this.setting('required_skills', this.input('required_skills', project.required_skills.join(', '), 'text'), 'Comma-separated; a member needs every one to get a task.')),
      h('div', { class: 'row actions' }, h('button', { type: 'submit', class: 'primary', id: 'project-save' }, 'Save project')))
    this.kindChanged()
    this.renderPreview()
  }

  private labelsError = h('p', { class: 'field-error', id: 'labels-error', hidden: true })

  /** A labelled control with its hint and error line. */
  private setting(field: string, control: HTMLElement, hint?: string): HTMLElement {
    const id = idOf(field)
    const error = h('p', { class: 'field-error', id: `${id}-error`, hidden: true })
    const help = hint ? h('p', { class: 'muted hint-text', id: `${id}-hint` }, hint) : null
    if (help) control.setAttribute('aria-describedby', help.id)
    this.controls.set(field, { control, error })
    return h('div', { class: 'field', 'data-setting': field }, h('label', { for: id }, LABELS[field] ?? field), control, help, error)
  }

  private input(field: string, value: string, mode: 'numeric' | 'decimal' | 'text' = 'decimal'): HTMLInputElement {
    return h('input', { id: idOf(field), type: 'text', inputMode: mode === 'text' ? null : mode, autocomplete: 'off', value }) as HTMLInputElement
  }

  private addRow(name: string, style: LabelStyle, focus = false): void {
    const number = ++this.rowCount
    const id = `label-${number}`
    const error = h('p', { class: 'field-error', id: `${id}-error`, hidden: true })
    const swatch = h('span', { class: 'swatch', 'aria-hidden': 'true' })
    const row: LabelRow = {
      name: h('input', { id: `${id}-name`, type: 'text', autocomplete: 'off', value: name, 'aria-describedby': 'labels-help' }) as HTMLInputElement,
      colour: h('input', { id: `${id}-colour`, type: 'text', autocomplete: 'off', maxLength: 7, placeholder: '#rrggbb', value: style.colour ?? '', class: 'colour-input', onInput: () => this.paintSwatch(row) }) as HTMLInputElement,
      hotkey: h('input', { id: `${id}-hotkey`, type: 'text', autocomplete: 'off', maxLength: 1, value: style.hotkey ?? '', class: 'hotkey-input' }) as HTMLInputElement,
      swatch,
      error,
      element: h('li', { class: 'label-row', 'data-row': number }),
    }
    const remove = h('button', { type: 'button', class: 'secondary', 'aria-label': `Remove label ${number}`, onClick: () => {
      this.rows = this.rows.filter((other) => other !== row)
      row.element.remove()
      this.element.querySelector<HTMLElement>('#project-add-label')?.focus()
    } }, 'Remove')
    row.element.append(
      h('span', { class: 'label-cell' }, h('label', { for: row.name.id }, `Label ${number}`), row.name),
      h('span', { class: 'label-cell' }, h('label', { for: row.colour.id }, `Colour of label ${number}`), h('span', { class: 'colour-pair' }, swatch, row.colour)),
      h('span', { class: 'label-cell' }, h('label', { for: row.hotkey.id }, `Hotkey of label ${number}`), row.hotkey),
      remove, error)
    this.rows.push(row)
    this.rowList.append(row.element)
    this.paintSwatch(row)
    if (focus) row.name.focus()
  }

  private paintSwatch(row: LabelRow): void {
    const colour = row.colour.value.trim()
    row.swatch.style.background = /^#[0-9a-fA-F]{6}$/.test(colour) ? colour : 'transparent'
  }

  private kindChanged(): void {
    const kind = this.kind.value as Kind
    const choice = kind === 'single_choice' || kind === 'multi_label' || kind === 'spans'
    this.kindParts.labels.hidden = !choice
    this.kindParts.text.hidden = kind !== 'free_text'
    this.kindParts.numeric.hidden = kind !== 'numeric'
    if (choice && !this.rows.length) this.addRow('', {})
  }

  private renderPreview(): void {
    const source = (this.controls.get('instructions')?.control as HTMLTextAreaElement | undefined)?.value ?? ''
    this.preview.replaceChildren(...(source.trim() ? renderMarkdown(source) : [h('p', { class: 'muted' }, 'Nothing yet.')]))
  }

  private text(field: string): string {
    return ((this.controls.get(field)?.control as HTMLInputElement | undefined)?.value ?? '').trim()
  }

  /** The project as typed, or the first thing that cannot be sent as it is. */
  read(): Project | Problem {
    const numbers: Record<string, number> = {}
    for (const [field, shape] of Object.values(NUMBERS).flat()) {
      const text = this.text(field)
      const value = Number(text)
      if (!text || !Number.isFinite(value)) return { field, message: 'Enter a number.' }
      if (shape === 'count' && (!Number.isInteger(value) || value < 0)) return { field, message: 'Enter a whole number, 0 or more.' }
      numbers[field] = value
    }
    const money: Record<string, number> = {}
    for (const field of ['pay_per_answer', 'target_hourly_rate']) {
      const micros = microsOf(this.text(field))
      if (micros === null) return { field, message: 'Enter an amount such as 0.05 (at most 6 decimals).' }
      money[field] = micros
    }
    const kind = this.kind.value as Kind
    let schema: AnswerSchema
    const styles: Record<string, LabelStyle> = {}
    if (kind === 'single_choice' || kind === 'multi_label' || kind === 'spans') {
      const names = this.rows.map((row) => row.name.value.trim())
      for (const row of this.rows) {
        const style: LabelStyle = {}
        if (row.colour.value.trim()) style.colour = row.colour.value.trim()
        if (row.hotkey.value) style.hotkey = row.hotkey.value
        if (style.colour || style.hotkey) styles[row.name.value.trim()] = style
      }
      schema = kind === 'spans' ? { kind, labels: names } : { kind, options: names }
    } else if (kind === 'free_text') {
      const max = this.text('answer_schema.max_chars')
      if (max && !Number.isInteger(Number(max))) return { field: 'answer_schema.max_chars', message: 'Enter a whole number, or leave it empty.' }
      schema = { kind, max_chars: max ? Number(max) : null }
    } else {
      const bound = (field: string) => (this.text(field) ? Number(this.text(field)) : null)
      for (const field of ['answer_schema.min', 'answer_schema.max']) {
        const value = bound(field)
        if (value !== null && !Number.isFinite(value)) return { field, message: 'Enter a number, or leave it empty.' }
      }
      schema = { kind, min: bound('answer_schema.min'), max: bound('answer_schema.max') }
    }
    return {
      instructions: (this.controls.get('instructions')?.control as HTMLTextAreaElement).value,
      answer_schema: schema,
      label_styles: styles,
      required_skills: this.text('required_skills').split(',').map((skill) => skill.trim()).filter(Boolean),
      overlap_min: numbers.overlap_min,
      overlap_max: numbers.overlap_max,
      min_confidence: numbers.min_confidence,
      gold_rate: numbers.gold_rate,
      onboarding_gold: numbers.onboarding_gold,
      reservation_ttl_seconds: numbers.reservation_ttl_seconds,
      reservation_cap_seconds: numbers.reservation_cap_seconds,
      pay_per_answer: money.pay_per_answer,
      target_hourly_rate: money.target_hourly_rate,
      auto_approve_seconds: numbers.auto_approve_seconds,
      min_accuracy: numbers.min_accuracy,
      min_lead_time_ms: numbers.min_lead_time_ms,
    }
  }

  /** The control and error line of a field the server named: the setting itself, a label's row (`label_styles.PER.hotkey`), or the nearest enclosing setting. */
  private target(field: string): { control: HTMLElement; error: HTMLElement } | null {
    const style = /^label_styles\.(.+?)(?:\.(colour|hotkey))?$/.exec(field)
    if (style) {
      const row = this.rows.find((candidate) => candidate.name.value.trim() === style[1])
      if (row) return { control: style[2] === 'colour' ? row.colour : style[2] === 'hotkey' ? row.hotkey : row.name, error: row.error }
    }
    for (let path = field; path; path = path.includes('.') ? path.slice(0, path.lastIndexOf('.')) : '') {
      const found = this.controls.get(path)
      if (found) return found
    }
    return null
  }

  /** Shows `message` next to the setting `field`, marks it invalid and moves the focus there; false if no control stands for it. */
  showError(field: string, message: string): boolean {
    const target = this.target(field)
    if (!target) return false
    const { control, error } = target
    error.textContent = message
    error.hidden = false
    control.setAttribute('aria-invalid', 'true')
    const described = (control.getAttribute('aria-describedby') ?? '').split(' ').filter((id) => id && id !== error.id)
    control.setAttribute('aria-describedby', [error.id, ...described].join(' '))
    control.dataset.errorShown = error.id
    control.focus()
    return true
  }

  /** Takes every error line away. */
  clearErrors(): void {
    for (const error of this.element.querySelectorAll<HTMLElement>('.field-error')) {
      error.hidden = true
      error.textContent = ''
    }
    for (const control of this.element.querySelectorAll<HTMLElement>('[aria-invalid]')) {
      control.removeAttribute('aria-invalid')
      const shown = control.dataset.errorShown
      const rest = (control.getAttribute('aria-describedby') ?? '').split(' ').filter((id) => id && id !== shown)
      if (rest.length) control.setAttribute('aria-describedby', rest.join(' '))
      else control.removeAttribute('aria-describedby')
      delete control.dataset.errorShown
    }
  }
}
