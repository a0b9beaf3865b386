// The signed-in user's to-dos (GET /todos/, every module's providers), read by the
// workbench and by the sidebar badges. Refreshed on sign-in, on every page change,
// on any event of the user's own topic, and every minute as a floor.
import { reactive, watch } from 'vue'
import { http } from '@/api'
import { realtime, realtimeState } from '@/realtime'
import { getToken } from '@/utils/token'

export const todos = reactive({ items: [], total: 0, partial: false, loaded: false, loading: false, error: '' })

let inflight = null
export function refreshTodos() {
  if (!getToken()) {
    Object.assign(todos, { items: [], total: 0, partial: false, loaded: false, error: '' })
    return Promise.resolve()
  }
  if (inflight) return inflight
  todos.loading = true
  inflight = http
    .get('/todos/', { silent: true })
    .then((r) => {
      todos.items = r.items || []
      todos.total = r.total || 0
      todos.partial = !!r.partial
      todos.loaded = true
      todos.error = ''
    })
    .catch((e) => {
      todos.error = e?.message || '待办加载失败'
    })
    .finally(() => {
      todos.loading = false
      inflight = null
    })
  return inflight
}

/** Count for a sidebar entry: the to-dos whose handling page is that route. */
export function badgeFor(routeName) {
  return todos.items.filter((t) => t.route === routeName).reduce((n, t) => n + t.count, 0)
}

export function urgentFor(routeName) {
  return todos.items.some((t) => t.route === routeName && t.urgent)
}

let started = false
export function watchTodos(router) {
  if (started) return
  started = true
  let topic = null
  const onEvent = () => refreshTodos()
  watch(
    () => realtimeState.user?.id,
    (id) => {
      if (topic) realtime.unsubscribe(topic, onEvent).catch(() => {})
      topic = id ? `user:${id}` : null
      if (topic) {
        realtime.subscribe(topic, onEvent).catch(() => {})
        refreshTodos()
      }
    },
    { immediate: true },
  )
  router.afterEach((to) => {
    if (getToken() && !to.meta?.public) refreshTodos()
  })
  setInterval(() => getToken() && refreshTodos(), 60_000)
  if (getToken()) refreshTodos()
}
