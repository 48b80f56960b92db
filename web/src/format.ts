// Formatting shared by the views. Money arrives as integer micro-units
// (1,000,000 = one currency unit) and is never turned into a float before
// display, so sums shown to workers stay exact.

export function money(micros: number | null | undefined): string {
  if (micros === null || micros === undefined) return '–'
  const negative = micros < 0
  const cents = Math.round(Math.abs(micros) / 10_000)
  const text = `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, '0')}`
  return negative ? `-${text}` : text
}

export function perHour(micros: number | null | undefined): string {
  return micros === null || micros === undefined ? '–' : `${money(micros)}/h`
}

export function time(ms: number | null | undefined): string {
  if (!ms) return ''
  return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })
}

export function dateTime(ms: number | null | undefined): string {
  if (!ms) return ''
  return new Date(ms).toLocaleString([], { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' })
}

/** m:ss for a countdown. */
export function countdown(ms: number): string {
  const seconds = Math.max(0, Math.ceil(ms / 1000))
  return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, '0')}`
}

export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '–'
  if (ms < 1000) return `${ms} ms`
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`
}

export function percent(value: number | null | undefined): string {
  return value === null || value === undefined ? '–' : `${Math.round(value * 100)}%`
}

/** A JSON answer in one line, for tables. */
export function answerText(answer: unknown): string {
  if (answer === null || answer === undefined) return '–'
  if (typeof answer === 'string') return answer
  if (Array.isArray(answer) && answer.every((item) => typeof item === 'object' && item && 'label' in item)) {
    return answer.map((span) => `${span.label} ${span.start}–${span.end}`).join(', ') || '(no spans)'
  }
  return JSON.stringify(answer)
}

/** Micro-units as currency units, exactly (no float): 1500000 → "1.5", 50000 → "0.05". */
export function unitsOf(micros: number): string {
  const negative = micros < 0
  const digits = String(Math.abs(Math.trunc(micros))).padStart(7, '0')
  const whole = digits.slice(0, -6).replace(/^0+(?=\d)/, '')
  const fraction = digits.slice(-6).replace(/0+$/, '')
  return `${negative ? '-' : ''}${whole}${fraction ? `.${fraction}` : ''}`
}

/** Currency units typed by a person as micro-units, exactly (no float); null unless a plain decimal with at most 6 decimals. */
export function microsOf(text: string): number | null {
  const match = /^\s*(-?)(\d*)(?:[.,](\d{0,6}))?\s*$/.exec(text)
  if (!match || (!match[2] && !match[3])) return null
  const micros = Number(match[2] || '0') * 1_000_000 + Number((match[3] ?? '').padEnd(6, '0'))
  if (!Number.isSafeInteger(micros)) return null
  return match[1] ? -micros : micros
}
