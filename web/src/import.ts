// Importing tasks (owners, moderators, the core team): a file picked or
// dropped (a JSON array, JSONL or CSV), uploaded with a progress bar, and
// the server's report (inserted, duplicates, each rejected task with its
// reason). A sample file fitting the room's answer schema can be
// downloaded from the page. The public REST API only (docs/API.md,
// "POST /api/v1/rooms/{room}/tasks"); the upload is an XMLHttpRequest
// because fetch reports no upload progress.

import { type KeyEntry, api, apiUrl, entryFor, isTeam } from './api'
import { h, mount, toast } from './dom'
import { type View, refusedView, topbar } from './layout'
import type { AnswerSchema, ImportReport, Project } from './wire'

export function importView(room: string): View {
  const entry = entryFor(room)
  if (!entry || !isTeam(entry.role)) return refusedView(room, entry ?? null, 'import', 'Only owners, moderators and the core team import tasks.')
  return new ImportPage(entry)
}

/** The Content-Type the server reads a file as, by its name. */
export function contentType(name: string): string {
  const lower = name.toLowerCase()
  if (lower.endsWith('.csv')) return 'text/csv'
  if (lower.endsWith('.jsonl') || lower.endsWith('.ndjson')) return 'application/x-ndjson'
  return 'application/json'
}

/** A gold answer that fits `schema`, for the sample file. */
function sampleGold(schema: AnswerSchema): unknown {
  switch (schema.kind) {
    case 'single_choice':
      return schema.options[0] ?? null
    case 'multi_label':
      return schema.options.slice(0, 1)
    case 'numeric':
      return schema.min ?? 0
    default:
      return null
  }
}

/** A three-task sample in CSV for `schema`: the second one gold where the schema has one. */
export function sampleCsv(schema: AnswerSchema): string {
  const gold = sampleGold(schema)
  const cell = (value: unknown) => {
    const text = typeof value === 'string' ? value : JSON.stringify(value)
    return /[",\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text
  }
  return [
    'id,text,gold',
    'sample-1,The first sentence to label.,',
    `sample-2,A sentence whose answer is known (gold).,${gold === null ? '' : cell(gold)}`,
    'sample-3,"A sentence with a comma, quoted.",',
  ].join('\n') + '\n'
}

class ImportPage implements View {
  readonly element = h('div', { class: 'page' })
  private input = h('input', { id: 'import-file', type: 'file', accept: '.json,.jsonl,.ndjson,.csv,application/json,text/csv' }) as HTMLInputElement
  private progress = h('progress', { max: 100, value: 0, 'aria-label': 'Upload progress', hidden: true }) as HTMLProgressElement
  private status = h('p', { role: 'status', 'aria-live': 'polite' })
  private report = h('section', { class: 'panel', 'aria-labelledby': 'import-report', hidden: true })
  private sample = h('p', null)
  private exported = h('p', { role: 'status', 'aria-live': 'polite' })
  private request: XMLHttpRequest | null = null

  constructor(private readonly entry: KeyEntry) {
    const drop = h('div', { class: 'dropzone', 'data-drop': '' },
      h('label', { for: 'import-file' }, 'Choose a file of tasks (JSON array, JSONL or CSV), or drop one here'),
      this.input)
    this.input.addEventListener('change', () => {
      const file = this.input.files?.[0]
      if (file) this.upload(file)
    })
    drop.addEventListener('dragover', (event) => {
      event.preventDefault()
      drop.classList.add('over')
    })
    drop.addEventListener('dragleave', () => drop.classList.remove('over'))
    drop.addEventListener('drop', (event) => {
      event.preventDefault()
      drop.classList.remove('over')
      const file = event.dataTransfer?.files?.[0]
      if (file) this.upload(file)
    })
    mount(this.element, topbar(entry, 'import'),
      h('main', { class: 'narrow import' },
        h('h1', null, 'Import tasks'),
        h('section', { class: 'panel', 'aria-label': 'File' },
          h('p', { class: 'hint' }, 'Each task needs an id; tasks whose id the room has already are skipped. CSV: an id column, optional gold, skills and tags (separated by ;); every other column becomes a field of the task’s data.'),
          drop, this.progress, this.status, this.sample),
        this.report,
        h('section', { class: 'panel', 'aria-labelledby': 'export-title' },
          h('h2', { id: 'export-title' }, 'Export'),
          h('p', { class: 'hint' }, 'Every task of the room with its consensus and every answer (it carries gold answers).'),
          h('div', { class: 'actions' }, ...(['jsonl', 'json', 'csv'] as const).map((format) => {
            const button = h('button', { type: 'button', class: 'secondary' }, `Download ${format.toUpperCase()}`)
            button.addEventListener('click', () => void this.download(format))
            return button
          })),
          this.exported)))
    void this.offerSample()
  }

  destroy(): void {
    this.request?.abort()
  }

  private async offerSample(): Promise<void> {
    try {
      const project = await api<Project>(this.entry.token, 'GET', `/rooms/${this.entry.room}/project`)
      const url = URL.createObjectURL(new Blob([sampleCsv(project.answer_schema)], { type: 'text/csv' }))
      mount(this.sample, h('a', { href: url, download: `sample-${project.answer_schema.kind}.csv` }, `Download a sample file for this project (${project.answer_schema.kind.replace('_', ' ')}, CSV)`))
    } catch {
      mount(this.sample, 'Set up the project first: a sample file follows its answer schema.')
    }
  }

  private upload(file: File): void {
    this.request?.abort()
    const request = new XMLHttpRequest()
    this.request = request
    request.open('POST', apiUrl(`/rooms/${this.entry.room}/tasks`))
    request.setRequestHeader('Authorization', `Bearer ${this.entry.token}`)
    request.setRequestHeader('Content-Type', contentType(file.name))
    this.progress.hidden = false
    this.progress.value = 0
    this.status.textContent = `Uploading ${file.name}…`
    request.upload.addEventListener('progress', (event) => {
      if (event.lengthComputable) this.progress.value = Math.round((event.loaded / event.total) * 100)
    })
    request.addEventListener('load', () => {
      this.progress.value = 100
      let body: unknown = null
      try {
        body = JSON.parse(request.responseText)
      } catch {
        body = null
      }
      if (request.status === 200 && body) {
        this.status.textContent = `${file.name} imported.`
        this.showReport(body as ImportReport)
      } else {
        const message = (body as { message?: string } | null)?.message ?? request.statusText
        this.status.textContent = `The import failed (${request.status}): ${message}`
        toast(`The import failed: ${message}`, 'error')
      }
    })
    request.addEventListener('error', () => {
      this.status.textContent = 'The server could not be reached; nothing was imported from this try.'
    })
    request.send(file)
  }

  /** Downloads the room's export (the request needs the token, so no plain link). */
  private async download(format: 'jsonl' | 'json' | 'csv'): Promise<void> {
    this.exported.textContent = `Preparing the ${format.toUpperCase()} export…`
    try {
      const response = await fetch(apiUrl(`/rooms/${this.entry.room}/export?format=${format}`), {
        headers: { Authorization: `Bearer ${this.entry.token}` },
      })
      if (!response.ok) throw new Error(`${response.status} ${await response.text()}`)
      const url = URL.createObjectURL(await response.blob())
      const link = h('a', { href: url, download: `${this.entry.room}.${format}` }, 'the file')
      document.body.append(link)
      link.click()
      link.remove()
      setTimeout(() => URL.revokeObjectURL(url), 60_000)
      this.exported.textContent = `${this.entry.room}.${format} downloaded.`
    } catch (error) {
      this.exported.textContent = `The export failed: ${(error as Error).message}`
    }
  }

  private showReport(report: ImportReport): void {
    const line = (label: string, value: number, key: string) => h('div', { 'data-report': key }, h('dt', null, label), h('dd', null, String(value)))
    mount(this.report,
      h('h2', { id: 'import-report' }, 'Report'),
      h('dl', { class: 'stats' }, line('Inserted', report.inserted, 'inserted'), line('Duplicates', report.duplicates, 'duplicates'), line('Rejected', report.rejected, 'rejected')),
      report.errors.length === 0
        ? h('p', null, 'No task was rejected.')
        : h('table', { class: 'table' },
          h('caption', null, 'Rejected tasks'),
          h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Task (its place in the file)'), h('th', { scope: 'col' }, 'Why'))),
          h('tbody', null, report.errors.map((error) => h('tr', null, h('td', null, String(error.task)), h('td', null, error.message))))))
    this.report.hidden = false
  }
}
