// Entry point and hash router. Hash routes keep the app a set of static
// files the server can serve from anywhere, and keep tokens out of request
// paths: `#/join/{token}` is read here, stored, and replaced at once.

import './style.css'
import { addOperator, addToken, isOperatorToken } from './api'
import { consoleView } from './console'
import { earningsView } from './earnings'
import { importView } from './import'
import { serverView } from './operator'
import { peopleView } from './people'
import { projectView } from './project'
import { installShortcuts } from './shortcuts'
import { tasksView } from './tasks'
import { payView } from './pay'
import { type View } from './layout'
import { reviewView } from './review'
import { roomView } from './room'
import { signinView } from './signin'

const app = document.getElementById('app')!
let current: View | null = null

function show(view: View): void {
  current?.destroy()
  current = view
  app.replaceChildren(view.element)
  const heading = view.element.querySelector('h1, h2')
  if (heading instanceof HTMLElement) document.title = `${heading.textContent} · Crowdroom`
}

async function route(): Promise<void> {
  const parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent)
  const [page, room, detail, watched] = parts
  if (page === 'join' && room) {
    // Take the token out of the address bar and history before anything else.
    history.replaceState(null, '', `${location.pathname}${location.search}#/`)
    try {
      if (isOperatorToken(room)) {
        await addOperator(room)
        location.hash = '#/server'
        return
      }
      const entry = await addToken(room)
      location.hash = `#/room/${entry.room}`
    } catch (error) {
      show(signinView(`That invite link did not work: ${(error as Error).message}`))
    }
    return
  }
  if (page === 'room' && room) return show(roomView(room))
  if (page === 'review' && room) return show(reviewView(room, detail ? Number(detail) : null, watched ?? null))
  if (page === 'earnings' && room) return show(earningsView(room))
  if (page === 'pay' && room) return show(payView(room))
  if (page === 'import' && room) return show(importView(room))
  if (page === 'people' && room) return show(peopleView(room))
  if (page === 'project' && room) return show(projectView(room))
  if (page === 'tasks' && room) return show(tasksView(room, detail ? Number(detail) : null))
  if (page === 'console') return show(consoleView(room ?? null))
  if (page === 'server') return show(serverView())
  show(signinView())
}

installShortcuts()
window.addEventListener('hashchange', () => void route())
void route()
