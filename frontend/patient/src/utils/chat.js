// 患者端的聊天模块：把 chat-store.js 的核心接到 uni 存储、请求封装和实时连接上。
//
// 用法（后续模块如问诊室、客服、诊疗团队直接复用 components/chat/ChatRoom.vue 即可）：
//   import { ensureChat } from '@/utils/chat.js'
//   const chat = await ensureChat()          // 登录用户确定后启动（发件箱按用户持久化）
//   const { store, close } = chat.open(conversationId)
import { ChatClient } from './chat-store.js'
import { realtime, STATUS } from './realtime.js'
import { get, post, ApiError } from './request.js'
import { getApiBase } from './config.js'
import { getToken } from './auth.js'

const storage = {
  get(key) {
    try {
      return uni.getStorageSync(key) || null
    } catch (e) {
      return null
    }
  },
  set(key, value) {
    uni.setStorageSync(key, value)
  },
  remove(key) {
    try {
      uni.removeStorageSync(key)
    } catch (e) {
      /* ignore */
    }
  },
}

function query(params) {
  const parts = []
  Object.keys(params || {}).forEach((k) => {
    const v = params[k]
    if (v !== undefined && v !== null && v !== '') parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
  })
  return parts.length ? '?' + parts.join('&') : ''
}

const quiet = { toast: false }

const adapter = {
  storage,
  isOpen: () => realtime.status === STATUS.OPEN,
  onOpen(fn) {
    let last = realtime.status
    return realtime.onStatus((s) => {
      const was = last
      last = s
      // 重新订阅的帧先发出（同一轮事件循环里），再补齐
      if (s === STATUS.OPEN && was !== STATUS.OPEN) setTimeout(fn, 0)
    })
  },
  onResync: (fn) => realtime.onResync(fn),
  request: (frame) => realtime.request(frame).then((r) => (r && r.data) || {}),
  subscribe(topic, handler) {
    // 每个订阅者持有自己的一份：首页和聊天同时订阅 user:<id> 时互不影响
    const h = (evt) => handler(evt)
    realtime.subscribe(topic, h).catch(() => {})
    return () => realtime.unsubscribe(topic, h).catch(() => {})
  },
  api: {
    conversations: () => get('/im/conversations', quiet),
    detail: (id) => get(`/im/conversations/${id}`, quiet),
    messages: (id, params) => get(`/im/conversations/${id}/messages${query(params)}`, quiet),
    send: (id, payload) => post(`/im/conversations/${id}/messages`, payload, quiet),
    read: (id, seq) => post(`/im/conversations/${id}/read`, { seq }, quiet),
    recall: (id, seq) => post(`/im/conversations/${id}/messages/${seq}/recall`, {}, quiet),
  },
}

export const chat = new ChatClient(adapter)

let me = null
let starting = null

// 取当前用户并启动聊天模块（只请求一次 /accounts/me）
export function ensureChat() {
  if (chat.started && me) return Promise.resolve(chat)
  if (!starting) {
    starting = get('/accounts/me')
      .then((user) => {
        me = user
        realtime.connect()
        chat.start(user.id)
        return chat
      })
      .finally(() => {
        starting = null
      })
  }
  return starting
}

export function currentUser() {
  return me
}

uni.$on('auth:session-ended', () => {
  chat.stop()
  me = null
})

// 上传附件（图片 / 语音），返回 {id, kind, content_type, size, filename, duration_ms}
export function uploadAttachment(conversationId, filePath, extra) {
  return new Promise((resolve, reject) => {
    uni.uploadFile({
      url: `${getApiBase()}/im/conversations/${conversationId}/attachments`,
      filePath,
      name: 'file',
      formData: extra || {},
      header: { Authorization: `Bearer ${getToken()}` },
      success(res) {
        let body = res.data
        try {
          body = typeof body === 'string' ? JSON.parse(body) : body
        } catch (e) {
          body = null
        }
        if (res.statusCode >= 200 && res.statusCode < 300 && body) resolve(body)
        else
          reject(
            new ApiError(res.statusCode, (body && body.code) || `http_${res.statusCode}`, (body && body.message) || '上传失败', body && body.detail),
          )
      },
      fail() {
        reject(new ApiError(0, 'network_error', '网络连接失败，请检查网络后重试'))
      },
    })
  })
}

// 附件需要鉴权：带 token 下载到本地临时文件（H5 为 blob 地址），按 id 缓存
const fileCache = new Map()
export function attachmentPath(id) {
  if (fileCache.has(id)) return fileCache.get(id)
  const p = new Promise((resolve, reject) => {
    uni.downloadFile({
      url: `${getApiBase()}/im/attachments/${id}`,
      header: { Authorization: `Bearer ${getToken()}` },
      success(res) {
        if (res.statusCode === 200 && res.tempFilePath) resolve(res.tempFilePath)
        else reject(new Error('下载失败'))
      },
      fail() {
        reject(new Error('下载失败'))
      },
    })
  })
  p.catch(() => fileCache.delete(id))
  fileCache.set(id, p)
  return p
}
