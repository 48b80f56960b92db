// @hocuspocus/server 3.4.4 in memory (no persistence extension, no other
// extensions) for side-by-side runs: `node hocuspocus.mjs [port]` (or PORT).
// Any token is accepted: onAuthenticate exists only so that every connection
// goes through the same Auth round trip a real deployment has.
// It is mounted on a plain http + ws server, as server.mjs mounts
// @y/websocket-server, because Hocuspocus's own Server.listen() binds every
// interface; this one listens on 127.0.0.1 only.
import http from 'node:http'
import { WebSocketServer } from 'ws'
import { Hocuspocus } from '@hocuspocus/server'

const port = Number(process.argv[2] ?? process.env.PORT ?? 1234)
// Without a persistence extension Hocuspocus drops a document as soon as its
// last connection closes, while an in-memory @y/websocket-server keeps it.
// The generator's convergence check opens a fresh client after the editors
// have left, so each document is kept loaded by one server-side direct
// connection (it receives no broadcasts; it only counts as a connection).
const held = new Set()
const hocuspocus = new Hocuspocus({
  quiet: true,
  async onAuthenticate () {},
  async connected ({ documentName, instance }) {
    if (held.has(documentName)) return
    held.add(documentName)
    await instance.openDirectConnection(documentName)
  },
})
const server = http.createServer((_request, response) => { response.writeHead(200); response.end('ok') })
new WebSocketServer({ server }).on('connection', (conn, request) => hocuspocus.handleConnection(conn, request))
server.listen(port, '127.0.0.1', () => console.log(`hocuspocus listening on ws://127.0.0.1:${port}`))
