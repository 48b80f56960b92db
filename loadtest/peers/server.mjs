// The stock y-websocket server (@y/websocket-server 0.1.1, in memory, no
// persistence) for side-by-side runs: `node server.mjs [port]`.
import http from 'node:http'
import { WebSocketServer } from 'ws'
import { setupWSConnection } from '@y/websocket-server/utils'

const port = Number(process.argv[2] ?? 1234)
const server = http.createServer((_request, response) => { response.writeHead(200); response.end('ok') })
new WebSocketServer({ server }).on('connection', (conn, request) => setupWSConnection(conn, request))
server.listen(port, '127.0.0.1', () => console.log(`y-websocket-server listening on ws://127.0.0.1:${port}`))
