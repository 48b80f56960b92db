// Provisions a room for the end-to-end run over the REST API, for manual
// runs against `crowdroom serve --demo` (the Rust test provisions its own
// room the same way and passes the tokens in E2E_TOKENS):
//
//   node e2e/provision.mjs http://127.0.0.1:8080 demo crt_<owner token>
//
// prints the environment for `node e2e/run.mjs`.

export const PROJECT = {
  instructions: 'Mark every person (PER), organisation (ORG) and place (LOC).',
  answer_schema: { kind: 'spans', labels: ['PER', 'ORG', 'LOC'] },
  overlap_min: 2,
  overlap_max: 3,
  min_confidence: 0.5,
  gold_rate: 0,
  onboarding_gold: 0,
  reservation_ttl_seconds: 300,
  pay_per_answer: 50000,
  target_hourly_rate: 15000000,
  min_lead_time_ms: 0,
}

export const TASKS = [
  'Ada Lovelace met Charles Babbage in London to discuss the Analytical Engine.',
  'Grace Hopper worked for the US Navy and Remington Rand in Philadelphia.',
  'Alan Turing studied at King’s College, Cambridge, before joining Bletchley Park.',
  'Katherine Johnson calculated trajectories for NASA at Langley in Virginia.',
  'Tim Berners-Lee wrote the first web browser at CERN near Geneva.',
  'Margaret Hamilton led the software team at MIT for the Apollo missions.',
].map((text, index) => ({ id: `t${index + 1}`, data: { text } }))

export const PEOPLE = {
  moderator: ['mo', 'moderator', 'Mo (moderator)'],
  core1: ['cora', 'core', 'Cora (core team)'],
  core2: ['cody', 'core', 'Cody (core team)'],
  worker1: ['wes', 'worker', 'Wes (worker)'],
  worker2: ['wanda', 'worker', 'Wanda (worker)'],
}

async function call(base, token, method, path, body) {
  const response = await fetch(`${base}/api/v1${path}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  })
  const text = await response.text()
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`)
  return text ? JSON.parse(text) : null
}

/** Issues the members' tokens, sets the project and imports the tasks. */
export async function provision(base, room, ownerToken) {
  const tokens = { owner: ownerToken }
  for (const [key, [user, role, display_name]] of Object.entries(PEOPLE)) {
    const issued = await call(base, ownerToken, 'POST', `/rooms/${room}/tokens`, { user, role, display_name, ttl_seconds: 86400 })
    tokens[key] = issued.token
  }
  await call(base, ownerToken, 'PUT', `/rooms/${room}/project`, PROJECT)
  await call(base, ownerToken, 'POST', `/rooms/${room}/tasks`, TASKS)
  return tokens
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [base, room, owner] = process.argv.slice(2)
  if (!owner) {
    console.error('usage: node e2e/provision.mjs BASE_URL ROOM OWNER_TOKEN')
    process.exit(2)
  }
  const tokens = await provision(base.replace(/\/$/, ''), room, owner)
  console.log(`E2E_SERVER=${base} E2E_ROOM=${room} E2E_TOKENS='${JSON.stringify(tokens)}'`)
}
