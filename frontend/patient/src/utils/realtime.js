// 实时连接客户端（WebSocket /ws/），见 docs/api-contract-foundation.md 的 WebSocket 一节
//
// - 连接地址不带 token；连上后 5 秒内发送第一帧 auth：
//   H5 用 {type:'auth', id:'1', token}；小程序没有浏览器 Origin，先 POST /realtime/ticket 换一次性票据，
//   再发 {type:'auth', id:'1', ticket}
// - 收到 auth.ok 后按服务器给的 heartbeat 秒数发送 ping
// - 断线后按 1 s .. 30 s 的带抖动指数退避重连；关闭码 4010（会话结束）不重连，回到登录页
// - subscribe / unsubscribe 带请求 id，返回 Promise；事件按 topic 分发给监听函数
//
// 用法：
//   import { realtime } from '@/utils/realtime.js'
//   realtime.connect()
//   const offStatus = realtime.onStatus((s) => { ... })  // s: 'idle'|'connecting'|'authenticating'|'open'|'closed'
//   const off = realtime.on('user:12', (evt) => { ... })  // evt: {topic, event, data}
//   await realtime.subscribe('user:12')
//   const data = (await realtime.request({ type: 'im.sync', conversation: 3, after_seq: 0 })).data  // 任意请求帧
//   const offResync = realtime.onResync(() => { ... })  // 服务器发来 {"type":"resync"}：从各自最后的 seq 补齐
import { getWsUrl, isMiniProgram } from './config.js'
import { getToken, endSession } from './auth.js'
import { get, post } from './request.js'

export const STATUS = Object.freeze({
  IDLE: 'idle',
  CONNECTING: 'connecting', // 建立连接中或等待重连
  AUTHENTICATING: 'authenticating', // 已连上，等待 auth.ok
  OPEN: 'open', // 已收到 auth.ok
  CLOSED: 'closed', // 主动断开或会话结束，不再重连
})

export const CLOSE_CODES = Object.freeze({
  AUTH_FAILED: 4001,
  ORIGIN_REFUSED: 4003,
  RATE_LIMITED: 4008,
  FRAME_TOO_BIG: 4009,
  SESSION_ENDED: 4010,
  PROTOCOL_ERROR: 4011,
})

const MIN_DELAY_MS = 1000
const MAX_DELAY_MS = 30000
const AUTH_TIMEOUT_MS = 10000
const REQUEST_TIMEOUT_MS = 10000
const DEFAULT_HEARTBEAT_S = 25

export class RealtimeError extends Error {
  constructor(code, message) {
    super(message || code)
    this.name = 'RealtimeError'
    this.code = code
  }
}

// 带抖动的指数退避（1 s .. 30 s）：第 n 次（从 0 开始）重连等待 [base/2, base]，
// base = min(30 s, 2 s * 2^n)，即 1–2 s、2–4 s、4–8 s … 最长 15–30 s
export function backoffDelay(attempt, random = Math.random) {
  const base = Math.min(MAX_DELAY_MS, MIN_DELAY_MS * Math.pow(2, attempt + 1))
  const delay = Math.round(base / 2 + random() * (base / 2))
  return Math.min(MAX_DELAY_MS, Math.max(MIN_DELAY_MS, delay))
}

function frameText(res) {
  // 支付宝 SocketTask 可能把消息包在 res.data.data 里
  let d = res && res.data
  if (d && typeof d === 'object' && typeof d.data === 'string') d = d.data
  return typeof d === 'string' ? d : ''
}

async function defaultFetchTicket() {
  const r = await post('/realtime/ticket', {}, { toast: false })
  return r && r.ticket
}

export class RealtimeClient {
  constructor(options = {}) {
    this.options = {
      getUrl: getWsUrl,
      getToken,
      useTicket: isMiniProgram(),
      fetchTicket: defaultFetchTicket,
      ...options,
    }
    this.status = STATUS.IDLE
    this.user = null
    this.heartbeat = DEFAULT_HEARTBEAT_S
    this.lastCloseCode = null

    this._task = null
    this._opening = false
    this._wanted = false
    this._generation = 0
    this._attempt = 0
    this._seq = 1
    this._lastSeen = 0
    this._reconnectTimer = null
    this._heartbeatTimer = null
    this._authTimer = null
    this._pending = new Map() // id -> {resolve, reject, timer}
    this._topics = new Set() // 需要保持的订阅，重连后自动重新订阅
    this._waiting = new Map() // topic -> [{resolve, reject}]，连接就绪前调用 subscribe 的等待者
    this._listeners = new Map() // topic（或 '*'）-> Set<fn>
    this._statusListeners = new Set()
    this._resyncListeners = new Set()
    this._sessionHooked = false
    this._networkHooked = false
  }

  // ---------- 公共接口 ----------

  connect() {
    this._hookSession()
    this._hookNetwork()
    this._wanted = true
    if (this._task || this._opening || this._reconnectTimer) return
    this._open()
  }

  disconnect() {
    this._wanted = false
    this._generation++
    this._clearReconnect()
    this._teardown(new RealtimeError('closed', '实时连接已关闭'))
    this._topics.clear()
    this._rejectWaiting(new RealtimeError('closed', '实时连接已关闭'))
    this._attempt = 0
    this.user = null
    this._setStatus(STATUS.CLOSED)
  }

  isOpen() {
    return this.status === STATUS.OPEN
  }

  onStatus(fn) {
    this._statusListeners.add(fn)
    try {
      fn(this.status)
    } catch (e) {
      console.error(e)
    }
    return () => this._statusListeners.delete(fn)
  }

  // topic 为 '*' 时接收所有事件
  on(topic, fn) {
    if (!this._listeners.has(topic)) this._listeners.set(topic, new Set())
    this._listeners.get(topic).add(fn)
    return () => this.off(topic, fn)
  }

  off(topic, fn) {
    const set = this._listeners.get(topic)
    if (!set) return
    set.delete(fn)
    if (!set.size) this._listeners.delete(topic)
  }

  subscribe(topic) {
    this._topics.add(topic)
    if (this.status === STATUS.OPEN) return this._sendSubscribe(topic)
    // 尚未就绪：等 auth.ok 后统一订阅
    return new Promise((resolve, reject) => {
      if (!this._waiting.has(topic)) this._waiting.set(topic, [])
      this._waiting.get(topic).push({ resolve, reject })
    })
  }

  // 发送任意请求帧（如 im.send / im.sync），resolve 为服务器的 reply 帧（数据在 .data）
  request(frame) {
    return this._request(frame)
  }

  // 服务器要求重新同步（如其 Redis 连接恢复后）
  onResync(fn) {
    this._resyncListeners.add(fn)
    return () => this._resyncListeners.delete(fn)
  }

  unsubscribe(topic) {
    const had = this._topics.delete(topic)
    const waiters = this._waiting.get(topic)
    if (waiters) {
      this._waiting.delete(topic)
      waiters.forEach((w) => w.reject(new RealtimeError('cancelled', '订阅已取消')))
    }
    if (!had || this.status !== STATUS.OPEN) return Promise.resolve()
    return this._request({ type: 'unsubscribe', topic })
  }

  // ---------- 内部实现 ----------

  _hookSession() {
    if (this._sessionHooked) return
    this._sessionHooked = true
    // 401 或退出登录时由 auth.js 发出
    uni.$on('auth:session-ended', () => {
      if (this._wanted || this._task) this.disconnect()
    })
  }

  // 网络断开时立即丢弃连接（浏览器不一定会关闭已有的 WebSocket），恢复时立即重连
  _hookNetwork() {
    if (this._networkHooked) return
    this._networkHooked = true
    const onChange = (connected) => {
      if (!this._wanted) return
      if (!connected) {
        if (this._task || this._opening) this._dropAndRetry()
      } else if (this._reconnectTimer) {
        this._clearReconnect()
        this._attempt = 0
        this._open()
      }
    }
    // #ifdef H5
    window.addEventListener('offline', () => onChange(false))
    window.addEventListener('online', () => onChange(true))
    // #endif
    // #ifndef H5
    if (typeof uni.onNetworkStatusChange === 'function') {
      uni.onNetworkStatusChange((res) => onChange(!(res && res.isConnected === false)))
    }
    // #endif
  }

  _setStatus(s) {
    if (this.status === s) return
    this.status = s
    this._statusListeners.forEach((fn) => {
      try {
        fn(s)
      } catch (e) {
        console.error(e)
      }
    })
  }

  async _open() {
    const gen = ++this._generation
    const token = this.options.getToken()
    if (!token) {
      this._wanted = false
      this._setStatus(STATUS.CLOSED)
      return
    }
    this._setStatus(STATUS.CONNECTING)
    this._opening = true

    let authFrame
    if (this.options.useTicket) {
      try {
        const ticket = await this.options.fetchTicket()
        if (!ticket) throw new RealtimeError('ticket_missing', '未获取到连接票据')
        authFrame = { type: 'auth', id: '1', ticket }
      } catch (e) {
        this._opening = false
        if (gen !== this._generation || !this._wanted) return
        if (e && e.status === 401) {
          // 请求封装已清除 token 并跳转登录页
          this._wanted = false
          this._setStatus(STATUS.CLOSED)
          return
        }
        this._scheduleReconnect()
        return
      }
    } else {
      authFrame = { type: 'auth', id: '1', token }
    }
    if (gen !== this._generation || !this._wanted) {
      this._opening = false
      return
    }

    let task
    try {
      const opts = { url: this.options.getUrl(), complete() {} }
      // #ifdef MP-ALIPAY
      opts.multiple = true // 支付宝需要 multiple 才返回 SocketTask
      // #endif
      task = uni.connectSocket(opts)
    } catch (e) {
      task = null
    }
    this._opening = false
    if (!task) {
      this._scheduleReconnect()
      return
    }
    this._task = task
    this._seq = 1

    task.onOpen(() => {
      if (gen !== this._generation) return
      this._setStatus(STATUS.AUTHENTICATING)
      this._lastSeen = Date.now()
      this._sendRaw(authFrame)
      this._authTimer = setTimeout(() => {
        if (gen === this._generation) this._dropAndRetry()
      }, AUTH_TIMEOUT_MS)
    })
    task.onMessage((res) => {
      if (gen !== this._generation) return
      this._onFrame(frameText(res))
    })
    task.onClose((res) => {
      if (gen !== this._generation) return
      this._onClosed(res && res.code, res && res.reason)
    })
    task.onError(() => {
      if (gen !== this._generation) return
      // 部分平台出错后不会再触发 onClose：作为异常断开处理
      this._onClosed(null, 'error')
    })
  }

  _onFrame(text) {
    let msg
    try {
      msg = JSON.parse(text)
    } catch (e) {
      return
    }
    if (!msg || typeof msg !== 'object') return
    this._lastSeen = Date.now()

    switch (msg.type) {
      case 'auth.ok':
        this._onAuthOk(msg)
        break
      case 'pong':
        break
      case 'reply':
        this._settle(msg.reply_to, msg.ok !== false ? null : new RealtimeError(msg.code || 'error', msg.message), msg)
        break
      case 'error':
        if (msg.reply_to && this._pending.has(String(msg.reply_to))) {
          this._settle(msg.reply_to, new RealtimeError(msg.code || 'error', msg.message), msg)
        }
        break
      case 'event':
        this._dispatch(msg)
        break
      case 'resync':
        this._resyncListeners.forEach((fn) => {
          try {
            fn(msg)
          } catch (e) {
            console.error(e)
          }
        })
        break
      default:
        break
    }
  }

  _onAuthOk(msg) {
    clearTimeout(this._authTimer)
    this._authTimer = null
    this.user = msg.user || null
    this.heartbeat = Number(msg.heartbeat) > 0 ? Number(msg.heartbeat) : DEFAULT_HEARTBEAT_S
    this._attempt = 0
    this._startHeartbeat()
    this._setStatus(STATUS.OPEN)
    // 重新订阅（含连接就绪前请求的订阅）
    this._topics.forEach((topic) => {
      const waiters = this._waiting.get(topic) || []
      this._waiting.delete(topic)
      this._sendSubscribe(topic).then(
        (r) => waiters.forEach((w) => w.resolve(r)),
        (e) => waiters.forEach((w) => w.reject(e)),
      )
    })
  }

  _sendSubscribe(topic) {
    return this._request({ type: 'subscribe', topic }).catch((e) => {
      if (e && e.code !== 'closed' && e.code !== 'timeout') this._topics.delete(topic) // 如 topic.forbidden
      throw e
    })
  }

  _dispatch(msg) {
    const evt = { topic: msg.topic, event: msg.event, data: msg.data || {} }
    const run = (set) =>
      set &&
      set.forEach((fn) => {
        try {
          fn(evt)
        } catch (e) {
          console.error(e)
        }
      })
    run(this._listeners.get(msg.topic))
    run(this._listeners.get('*'))
  }

  _request(frame) {
    if (!this._task || this.status !== STATUS.OPEN) {
      return Promise.reject(new RealtimeError('closed', '实时连接未就绪'))
    }
    const id = String(++this._seq)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this._pending.delete(id)
        reject(new RealtimeError('timeout', '请求超时'))
      }, REQUEST_TIMEOUT_MS)
      this._pending.set(id, { resolve, reject, timer })
      this._sendRaw({ ...frame, id })
    })
  }

  _settle(replyTo, err, msg) {
    const id = String(replyTo)
    const p = this._pending.get(id)
    if (!p) return
    this._pending.delete(id)
    clearTimeout(p.timer)
    if (err) p.reject(err)
    else p.resolve(msg)
  }

  _sendRaw(frame) {
    if (!this._task) return
    try {
      this._task.send({ data: JSON.stringify(frame), fail() {} })
    } catch (e) {
      /* 由 onClose / 心跳超时处理 */
    }
  }

  _startHeartbeat() {
    clearInterval(this._heartbeatTimer)
    const intervalMs = this.heartbeat * 1000
    this._heartbeatTimer = setInterval(() => {
      // 两个心跳周期都没有收到任何数据：认为连接已失效
      if (Date.now() - this._lastSeen > intervalMs * 2 + 5000) {
        this._dropAndRetry()
        return
      }
      this._sendRaw({ type: 'ping', id: String(++this._seq) })
    }, intervalMs)
  }

  // 清理当前连接（计时器、任务、未完成请求），不改变 _wanted
  _teardown(reason) {
    clearTimeout(this._authTimer)
    clearInterval(this._heartbeatTimer)
    this._authTimer = null
    this._heartbeatTimer = null
    const task = this._task
    this._task = null
    this._opening = false
    if (task) {
      try {
        task.close({ code: 1000, reason: 'client closing', fail() {} })
      } catch (e) {
        /* ignore */
      }
    }
    this._pending.forEach((p) => {
      clearTimeout(p.timer)
      p.reject(reason)
    })
    this._pending.clear()
  }

  // 客户端判定连接异常（认证超时、心跳超时）：主动关闭并重连
  _dropAndRetry() {
    this._generation++
    this._teardown(new RealtimeError('closed', '实时连接已断开'))
    this._scheduleReconnect()
  }

  _onClosed(code, reason) {
    this._generation++ // 忽略该连接之后的回调
    this.lastCloseCode = code || null
    this._teardown(new RealtimeError('closed', '实时连接已断开'))

    if (code === CLOSE_CODES.SESSION_ENDED) {
      // 会话已结束（退出登录、账号停用、角色变更）：不重连，回登录页
      this._wanted = false
      this._topics.clear()
      this._rejectWaiting(new RealtimeError('session_ended', '会话已结束'))
      this._setStatus(STATUS.CLOSED)
      endSession('登录状态已失效，请重新登录')
      return
    }
    if (!this._wanted) {
      this._setStatus(STATUS.CLOSED)
      return
    }
    if (code === CLOSE_CODES.AUTH_FAILED) {
      // 认证失败：检查登录状态，若 token 已失效，请求封装会跳转登录页并触发 disconnect
      get('/accounts/me', { toast: false }).catch(() => {})
    }
    this._scheduleReconnect()
  }

  _scheduleReconnect() {
    if (!this._wanted || this._reconnectTimer) return
    const delay = backoffDelay(this._attempt)
    this._attempt++
    this._setStatus(STATUS.CONNECTING)
    this._reconnectTimer = setTimeout(() => {
      this._reconnectTimer = null
      if (this._wanted) this._open()
    }, delay)
  }

  _clearReconnect() {
    clearTimeout(this._reconnectTimer)
    this._reconnectTimer = null
  }

  _rejectWaiting(err) {
    this._waiting.forEach((ws) => ws.forEach((w) => w.reject(err)))
    this._waiting.clear()
  }
}

// 应用内共用的一个实例
export const realtime = new RealtimeClient()

export default realtime
