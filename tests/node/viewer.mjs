// A viewer reads a document but its writes are refused with the protocol's
// permission-denied message, and never reach other clients or the store.
// usage: node viewer.mjs ws://HOST/yjs/ROOM DOC WRITER_TOKEN VIEWER_TOKEN
import { connect, waitFor, main } from './common.mjs'

const [serverUrl, docName, writerToken, viewerToken] = process.argv.slice(2)

main(async () => {
  const denied = []
  const warn = console.warn
  console.warn = (...args) => { denied.push(args.join(' ')) }
  const writer = connect(serverUrl, docName, writerToken, 'writer')
  await waitFor('writer synced', () => writer.provider.synced)
  writer.text.insert(0, 'hello')
  const viewer = connect(serverUrl, docName, viewerToken, 'viewer')
  await waitFor('viewer synced', () => viewer.provider.synced)
  await waitFor('viewer reads', () => viewer.text.toString() === 'hello')
  viewer.text.insert(0, 'evil ')
  await waitFor('permission denied', () => denied.some((line) => line.includes('Permission denied')))
  // A later write from the writer reaches the viewer: ordering proves the
  // server has handled the viewer's update by now.
  writer.text.insert(writer.text.length, '!')
  await waitFor('viewer sees later write', () => viewer.text.toString().endsWith('!'))
  const writerText = writer.text.toString()
  writer.provider.destroy()
  viewer.provider.destroy()
  const fresh = connect(serverUrl, docName, writerToken, 'fresh')
  await waitFor('fresh synced', () => fresh.provider.synced)
  await waitFor('fresh content', () => fresh.text.length > 0)
  const freshText = fresh.text.toString()
  fresh.provider.destroy()
  console.warn = warn
  return { writerText, freshText, denied }
})
