// A page's set of hub topics: hold(list) subscribes to the new ones and drops the rest;
// release() drops them all (onBeforeUnmount). Every event goes to one handler.
import { realtime } from '@/realtime'

export function topicSet(handler) {
  let held = new Set()
  return {
    hold(list) {
      const next = new Set(list.filter(Boolean))
      for (const t of held) if (!next.has(t)) realtime.unsubscribe(t, handler).catch(() => {})
      for (const t of next) if (!held.has(t)) realtime.subscribe(t, handler).catch(() => {})
      held = next
    },
    release() {
      for (const t of held) realtime.unsubscribe(t, handler).catch(() => {})
      held = new Set()
    },
  }
}

/** fn, called at most once per `ms` burst (trailing). */
export function debounce(fn, ms = 300) {
  let t = null
  const run = (...args) => {
    clearTimeout(t)
    t = setTimeout(() => fn(...args), ms)
  }
  run.cancel = () => clearTimeout(t)
  return run
}
