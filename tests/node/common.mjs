// Shared helpers for the stock-client compatibility scripts: a provider
// made exactly as an application would make one, and waiting with a deadline.
import WebSocket from 'ws'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'

export { Y }

// serverUrl is ws://HOST/yjs/ROOM; the doc name is y-websocket's "room name".
export function connect (serverUrl, docName, token, name) {
  const doc = new Y.Doc()
  const provider = new WebsocketProvider(serverUrl, docName, doc, {
    WebSocketPolyfill: WebSocket,
    // Essential: without it, providers in one process sync over
    // BroadcastChannel without the server and a test passes falsely.
    disableBc: true,
    params: { token }
  })
  provider.awareness.setLocalStateField('user', { name })
  return { doc, provider, text: doc.getText('text'), map: doc.getMap('labels') }
}

export async function waitFor (what, predicate, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

export async function main (body) {
  try {
    const result = await body()
    process.stdout.write(JSON.stringify(result) + '\n')
    process.exit(0)
  } catch (error) {
    process.stderr.write(`FAILED: ${error.stack || error}\n`)
    process.exit(1)
  }
}
