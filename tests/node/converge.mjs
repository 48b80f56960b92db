// Three stock y-websocket clients edit one document concurrently and must
// converge through the server; each must see the others' awareness.
// Then a fourth client, connecting after the others left, loads the result.
// usage: node converge.mjs ws://HOST/yjs/ROOM DOC TOKEN1 TOKEN2 TOKEN3
import { connect, waitFor, main } from './common.mjs'

const [serverUrl, docName, ...tokens] = process.argv.slice(2)

main(async () => {
  const clients = tokens.map((token, i) => connect(serverUrl, docName, token, `client-${i}`))
  await waitFor('all synced', () => clients.every((c) => c.provider.synced))
  // Concurrent edits: each client inserts at the start and sets a label.
  clients.forEach((c, i) => {
    c.text.insert(0, `<${i}>`)
    c.map.set(`by-${i}`, i)
  })
  for (let round = 0; round < 20; round++) {
    const c = clients[round % clients.length]
    c.text.insert(Math.floor(c.text.length / 2), String.fromCharCode(97 + round))
  }
  await waitFor('convergence', () => {
    const texts = clients.map((c) => c.text.toString())
    return texts.every((t) => t === texts[0]) && texts[0].length === 3 * 3 + 20 &&
      clients.every((c) => c.map.size === 3)
  })
  await waitFor('awareness of all three', () =>
    clients.every((c) => c.provider.awareness.getStates().size === 3))
  const names = clients.map((c) => [...c.provider.awareness.getStates().values()].map((s) => s.user?.name).sort())
  const final = clients[0].text.toString()
  // Leaving removes awareness at once for those who stay.
  clients[2].provider.destroy()
  await waitFor('awareness removal', () =>
    clients.slice(0, 2).every((c) => c.provider.awareness.getStates().size === 2))
  clients.forEach((c) => c.provider.destroy())
  const late = connect(serverUrl, docName, tokens[0], 'late')
  await waitFor('late client synced', () => late.provider.synced)
  await waitFor('late client content', () => late.text.toString() === final)
  late.provider.destroy()
  return { text: final, labels: clients[0].map.toJSON(), names, lateText: late.text.toString() }
})
