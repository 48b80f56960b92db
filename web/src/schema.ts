// The annotation document of crdt/src/schema.rs, in TypeScript: root
// `spans` (Y.Array of Y.Map {id,start,end,label,author}, UTF-16 offsets),
// `labels` (Y.Map of plain JSON), `text` (Y.Text), `comments` (Y.Array of
// Y.Map), `review` and `meta` (Y.Map). Reading is tolerant like the Rust
// reader: any peer can write anything, so malformed records are skipped.
// The answer a worker submits is derived from the document here, per the
// project's answer schema, so every tab and the server agree on it.

import * as Y from 'yjs'
import type { AnswerSchema } from './wire'

export interface Span { id: string; start: number; end: number; label: string; author: string }
export interface Comment { id: string; author: string; body: string; at: number; span_id?: string }

type Record_ = Y.Map<unknown> | Record<string, unknown>

function field(record: unknown, key: string): unknown {
  if (record instanceof Y.Map) return record.get(key)
  if (record && typeof record === 'object' && !(record instanceof Y.AbstractType)) return (record as Record<string, unknown>)[key]
  return undefined
}

const isInt = (value: unknown): value is number => typeof value === 'number' && Number.isInteger(value) && value >= 0

export function spansOf(doc: Y.Doc): Span[] {
  const spans: Span[] = []
  for (const record of doc.getArray<Record_>('spans').toArray()) {
    const [id, start, end, label, author] = ['id', 'start', 'end', 'label', 'author'].map((key) => field(record, key))
    if (typeof id === 'string' && isInt(start) && isInt(end) && typeof label === 'string' && typeof author === 'string') {
      spans.push({ id, start, end, label, author })
    }
  }
  return spans
}

export function commentsOf(doc: Y.Doc): Comment[] {
  const comments: Comment[] = []
  for (const record of doc.getArray<Record_>('comments').toArray()) {
    const [id, author, body, at, spanId] = ['id', 'author', 'body', 'at', 'span_id'].map((key) => field(record, key))
    if (typeof id === 'string' && typeof author === 'string' && typeof body === 'string' && isInt(at)) {
      comments.push({ id, author, body, at, ...(typeof spanId === 'string' ? { span_id: spanId } : {}) })
    }
  }
  return comments
}

/** A random id; crypto.randomUUID exists only in secure contexts. */
export function newId(): string {
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID()
  const bytes = crypto.getRandomValues(new Uint8Array(16))
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('')
}

function mapOf(entries: Record<string, unknown>): Y.Map<unknown> {
  const map = new Y.Map<unknown>()
  for (const [key, value] of Object.entries(entries)) map.set(key, value)
  return map
}

export function addSpan(doc: Y.Doc, span: Omit<Span, 'id'>): string {
  const id = newId()
  doc.getArray('spans').push([mapOf({ id, ...span })])
  return id
}

function indexOfSpan(doc: Y.Doc, id: string): number {
  return doc.getArray<Record_>('spans').toArray().findIndex((record) => field(record, 'id') === id)
}

/** Moves a span; a plain-object span is replaced by a Y.Map so later moves merge. */
export function moveSpan(doc: Y.Doc, id: string, start: number, end: number): void {
  const spans = doc.getArray<Record_>('spans')
  doc.transact(() => {
    const index = indexOfSpan(doc, id)
    if (index < 0) return
    const record = spans.get(index)
    if (record instanceof Y.Map) {
      record.set('start', start)
      record.set('end', end)
    } else {
      const span = spansOf(doc).find((candidate) => candidate.id === id)
      if (!span) return
      spans.delete(index, 1)
      spans.insert(index, [mapOf({ ...span, start, end })])
    }
  })
}

export function relabelSpan(doc: Y.Doc, id: string, label: string): void {
  const record = doc.getArray<Record_>('spans').get(indexOfSpan(doc, id))
  if (record instanceof Y.Map) record.set('label', label)
}

export function removeSpan(doc: Y.Doc, id: string): void {
  const index = indexOfSpan(doc, id)
  if (index >= 0) doc.getArray('spans').delete(index, 1)
}

export function addComment(doc: Y.Doc, comment: Omit<Comment, 'id' | 'at'>): void {
  doc.getArray('comments').push([mapOf({ id: newId(), at: Date.now(), ...comment })])
}

export const labels = (doc: Y.Doc): Y.Map<unknown> => doc.getMap('labels')
export const freeText = (doc: Y.Doc): Y.Text => doc.getText('text')
export const review = (doc: Y.Doc): Y.Map<unknown> => doc.getMap('review')

/** Writes `meta` once, when the document is new. */
export function ensureMeta(doc: Y.Doc, taskId: number): void {
  const meta = doc.getMap('meta')
  if (!meta.has('task_id')) {
    doc.transact(() => {
      meta.set('task_id', String(taskId))
      meta.set('schema_version', 1)
    })
  }
}

/** The answer the document holds, in the form the answer schema asks for; a string says what is missing. */
export function answerFrom(doc: Y.Doc, schema: AnswerSchema): { answer: unknown } | { missing: string } {
  const value = labels(doc).get('answer')
  switch (schema.kind) {
    case 'single_choice':
      return typeof value === 'string' && schema.options.includes(value) ? { answer: value } : { missing: 'choose an option' }
    case 'multi_label':
      return Array.isArray(value) ? { answer: value.filter((option) => schema.options.includes(option)) } : { answer: [] }
    case 'spans': {
      const spans = spansOf(doc)
        .filter((span) => span.start < span.end && schema.labels.includes(span.label))
        .sort((a, b) => a.start - b.start || a.end - b.end)
        .map(({ start, end, label }) => ({ start, end, label }))
      return { answer: spans }
    }
    case 'free_text': {
      const text = freeText(doc).toString()
      if (!text.trim()) return { missing: 'write an answer' }
      if (schema.max_chars != null && text.length > schema.max_chars) return { missing: `at most ${schema.max_chars} characters (now ${text.length})` }
      return { answer: text }
    }
    case 'numeric': {
      if (typeof value !== 'number' || !Number.isFinite(value)) return { missing: 'enter a number' }
      if (schema.min != null && value < schema.min) return { missing: `at least ${schema.min}` }
      if (schema.max != null && value > schema.max) return { missing: `at most ${schema.max}` }
      return { answer: value }
    }
  }
}

/** Writes an answer (e.g. the consensus) into the document as the starting point of a correction. */
export function writeAnswer(doc: Y.Doc, schema: AnswerSchema, answer: unknown, author: string): void {
  doc.transact(() => {
    if (schema.kind === 'spans') {
      const spans = doc.getArray('spans')
      spans.delete(0, spans.length)
      for (const span of Array.isArray(answer) ? answer : []) {
        if (span && typeof span === 'object') addSpan(doc, { start: span.start, end: span.end, label: span.label, author })
      }
    } else if (schema.kind === 'free_text') {
      const text = freeText(doc)
      text.delete(0, text.length)
      text.insert(0, typeof answer === 'string' ? answer : '')
    } else if (answer !== null && answer !== undefined) {
      labels(doc).set('answer', answer)
    }
  })
}

/** Whether the document holds any answer yet. */
export function isEmptyAnswer(doc: Y.Doc): boolean {
  return !labels(doc).has('answer') && doc.getArray('spans').length === 0 && freeText(doc).length === 0
}
