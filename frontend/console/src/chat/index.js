// The console's chat module: the platform-free core (./store.js, same file as the patient
// app's src/utils/chat-store.js) wired to sessionStorage, the HTTP client and the realtime
// client. Later modules (visit rooms, customer service, care teams) embed
// components/chat/ChatPanel.vue with a conversation id.
//
//   import { ensureChat } from '@/chat'
//   const chat = await ensureChat()
//   const { store, close } = chat.open(conversationId)
import { watch } from 'vue'
import { http, ApiError } from '@/api'
import { realtime, realtimeState } from '@/realtime'
import { getToken } from '@/utils/token'
import { useAuthStore } from '@/stores/auth'
import { ChatClient } from './store'

export { formatChatTime, messagePreview, cardLabel, RECALL_WINDOW_MS } from './store'

const storage = {
  get: (key) => {
    try {
      return sessionStorage.getItem(key)
    } catch {
      return null
    }
  },
  set: (key, value) => sessionStorage.setItem(key, value),
  remove: (key) => {
    try {
      sessionStorage.removeItem(key)
    } catch {
      /* ignore */
    }
  },
}

const quiet = { silent: true }

const adapter = {
  storage,
  isOpen: () => realtimeState.status === 'connected',
  onOpen(fn) {
    // the watcher runs after the realtime client has re-sent its subscriptions
    return watch(
      () => realtimeState.status,
      (s, was) => {
        if (s === 'connected' && was !== 'connected') fn()
      },
    )
  },
  onResync: (fn) => realtime.onResync(fn),
  request: (frame) => realtime.request(frame).then((r) => r?.data || {}),
  subscribe(topic, handler) {
    const h = (msg) => handler({ event: msg.event, data: msg.data || {} })
    realtime.subscribe(topic, h).catch(() => {})
    return () => realtime.unsubscribe(topic, h).catch(() => {})
  },
  api: {
    conversations: () => http.get('/im/conversations', quiet),
    detail: (id) => http.get(`/im/conversations/${id}`, quiet),
    messages: (id, query) => http.get(`/im/conversations/${id}/messages`, { ...quiet, query }),
    send: (id, payload) => http.post(`/im/conversations/${id}/messages`, payload, quiet),
    read: (id, seq) => http.post(`/im/conversations/${id}/read`, { seq }, quiet),
    recall: (id, seq) => http.post(`/im/conversations/${id}/messages/${seq}/recall`, {}, quiet),
  },
}

export const chat = new ChatClient(adapter)

/** Start the chat module for the signed-in user (idempotent). */
export async function ensureChat() {
  const auth = useAuthStore()
  if (!auth.user) await auth.fetchMe()
  const id = auth.user?.id
  if (!id) throw new ApiError(401, 'auth.unauthenticated', '请先登录')
  realtime.connect()
  if (!chat.started || chat.userId !== id) chat.start(id)
  return chat
}

// Stop when the session ends (logout, 4010) so another user never sees this outbox.
watch(
  () => realtimeState.status,
  (s) => {
    if ((s === 'idle' || s === 'ended') && !getToken() && chat.started) chat.stop()
  },
)

/** Upload an attachment (multipart); resolves with {id, kind, content_type, size, filename, duration_ms}. */
export async function uploadAttachment(conversationId, file, durationMs) {
  const form = new FormData()
  form.append('file', file)
  if (durationMs) form.append('duration_ms', String(durationMs))
  let res
  try {
    res = await fetch(`/api/v1/im/conversations/${conversationId}/attachments`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${getToken()}`, Accept: 'application/json' },
      body: form,
    })
  } catch {
    throw new ApiError(0, 'network_error', '网络连接失败，请检查网络后重试')
  }
  const data = await res.json().catch(() => null)
  if (!res.ok) throw new ApiError(res.status, data?.code || `http_${res.status}`, data?.message || '上传失败', data?.detail)
  return data
}

// Attachments need the bearer token: fetch once as a blob, keep an object URL per id.
const blobCache = new Map()
export function attachmentUrl(id) {
  if (blobCache.has(id)) return blobCache.get(id)
  const p = fetch(`/api/v1/im/attachments/${id}`, { headers: { Authorization: `Bearer ${getToken()}` } }).then(
    async (res) => {
      if (!res.ok) throw new Error('下载失败')
      return URL.createObjectURL(await res.blob())
    },
  )
  p.catch(() => blobCache.delete(id))
  blobCache.set(id, p)
  return p
}
