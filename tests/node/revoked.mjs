// A stock client whose token is revoked while connected is closed with 4403
// and, following y-websocket's 4400-4499 convention, stops reconnecting.
// usage: node revoked.mjs ws://HOST/yjs/ROOM http://HOST ROOM DOC TOKEN TOKEN_ID OWNER_TOKEN
import { connect, waitFor, main } from './common.mjs'

const [serverUrl, httpBase, room, docName, token, tokenId, ownerToken] = process.argv.slice(2)

main(async () => {
  const client = connect(serverUrl, docName, token, 'soon-revoked')
  let closed = null
  client.provider.on('closed', (event) => { closed = event })
  await waitFor('synced', () => client.provider.synced)
  const response = await fetch(`${httpBase}/api/v1/rooms/${room}/tokens/${tokenId}`, {
    method: 'DELETE',
    headers: { authorization: `Bearer ${ownerToken}` }
  })
  if (response.status !== 204) throw new Error(`revoke answered ${response.status}`)
  await waitFor('closed event', () => closed !== null)
  // Give a reconnect every chance to happen; it must not.
  await new Promise((resolve) => setTimeout(resolve, 1500))
  const reconnecting = client.provider.ws !== null || client.provider.wsconnecting
  client.provider.destroy()
  return { code: closed.code, reason: closed.reason, reconnecting }
})
