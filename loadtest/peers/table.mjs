// Prints loadtest JSON reports side by side: `node table.mjs name=report.json ...`.
import { readFileSync } from 'node:fs'

const runs = process.argv.slice(2).map((arg) => {
  const [name, path] = arg.split('=')
  return { name, report: JSON.parse(readFileSync(path, 'utf8')) }
})
const fixed = (digits) => (value) => (value == null ? '-' : Number(value).toFixed(digits))
const latency = (hist, pct) => (r) => r.latency_ms?.[hist]?.[`${pct}_ms`]
const rows = [
  ['connections ok / failed / dropped', (r) => `${r.counts.connected} / ${r.counts.connect_failed} / ${r.counts.dropped}`, String],
  ['edits sent', (r) => r.counts.edits_sent, String],
  ['edits/s', (r) => r.throughput_per_second?.edits, fixed(1)],
  ['deliveries (peers)', (r) => r.counts.deliveries, String],
  ['receipts missing', (r) => r.counts.missing, String],
  ['fan-out p50 ms', latency('fanout', 'p50'), fixed(2)],
  ['fan-out p90 ms', latency('fanout', 'p90'), fixed(2)],
  ['fan-out p99 ms', latency('fanout', 'p99'), fixed(2)],
  ['fan-out p99.9 ms', latency('fanout', 'p999'), fixed(2)],
  ['fan-out max ms', latency('fanout', 'max'), fixed(2)],
  ['ack p50 ms', latency('ack', 'p50'), fixed(2)],
  ['ack p99 ms', latency('ack', 'p99'), fixed(2)],
  ['connect p99 ms', latency('connect', 'p99'), fixed(2)],
  ['sync p99 ms', latency('sync', 'p99'), fixed(2)],
  ['generator send lag p99 ms', latency('send_lag', 'p99'), fixed(2)],
  ['server CPU s (window)', (r) => r.server?.cpu_seconds, fixed(2)],
  ['server CPU % of one core', (r) => r.server?.cpu_percent_of_one_core, fixed(0)],
  ['server CPU µs per edit', (r) => r.server?.cpu_us_per_edit, fixed(1)],
  ['server RSS MiB (end)', (r) => (r.server?.rss_kib_end == null ? null : r.server.rss_kib_end / 1024), fixed(1)],
  ['generator CPU % of one core', (r) => r.generator?.cpu_percent_of_one_core, fixed(0)],
  ['machine busy % (of 100 x cores)', (r) => r.generator?.machine_busy_percent_of_one_core, fixed(0)],
  ['errors', (r) => r.error_total, String],
  ['convergence', (r) => (r.convergence ? `${r.convergence.converged}/${r.convergence.rooms}` : null), String],
]
const table = [['', ...runs.map((run) => run.name)]]
for (const [label, get, format] of rows) {
  table.push([label, ...runs.map((run) => { const value = get(run.report); return value == null ? '-' : format(value) })])
}
const widths = table[0].map((_, column) => Math.max(...table.map((row) => String(row[column]).length)))
for (const [index, row] of table.entries()) {
  console.log('| ' + row.map((cell, column) => String(cell).padEnd(widths[column])).join(' | ') + ' |')
  if (index === 0) console.log('|' + widths.map((width) => '-'.repeat(width + 2)).join('|') + '|')
}
