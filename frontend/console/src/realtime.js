// Realtime client for the contract's WebSocket `/ws/` (same origin).
//
//   - first frame {"type":"auth","id":..,"token":..}; waits for auth.ok
//   - pings every `heartbeat` seconds (from auth.ok); a missing pong drops the socket
//   - reconnects with jittered exponential backoff (1 s .. 30 s), except after close 4010
//     (session ended: token cleared, onSessionEnded called, no reconnect)
//   - subscribe/unsubscribe carry request ids and resolve on {"type":"reply","ok":true}
//     or reject on {"type":"error",...}; topics are re-subscribed after a reconnect
//
// Status (reactive `realtimeState.status`):
//   idle | connecting | authenticating | connected | reconnecting | ended
import { reactive } from 'vue'
import { getToken, clearToken } from '@/utils/token'

export const CLOSE_SESSION_ENDED = 4010

export const STATUS_LABELS = {
  idle: '未连接',
  connecting: '连接中',
  authenticating: '连接中',
  connected: '已连接',
  reconnecting: '重连中',
  ended: '已断开',
}

const BACKOFF_MIN_MS = 1000
const BACKOFF_MAX_MS = 30000
const REQUEST_TIMEOUT_MS = 10000
const AUTH_TIMEOUT_MS = 10000

export const realtimeState = reactive({
  status: 'idle',
  user: null,
  heartbeat: null,
  lastCloseCode: null,
  retryInMs: null,
})

export class RealtimeError extends Error {
  constructor(code, message) {
    super(message || code)
    this.name = 'RealtimeError'
    this.code = code
  }
}

export function wsUrl(path = '/ws/') {
  const proto = window.location.protocol === 'https:' ? 'wss:' : 'ws:'
  return `${proto}//${window.location.host}${path}`
}

export function backoffDelay(attempt) {
  // Full range [base/2, base], base = 1 s * 2^attempt capped at 30 s.
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** attempt)
  const delay = base / 2 + Math.random() * (base / 2)
  return Math.round(Math.min(BACKOFF_MAX_MS, Math.max(BACKOFF_MIN_MS, delay)))
}

class RealtimeClient {
  constructor() {
    this.ws = null
    this.wanted = false // connect() called and not disconnect()ed
    this.attempt = 0
    this.seq = 0
    this.pending = new Map() // id -> {resolve, reject, timer}
    this.topics = new Map() // topic -> Set(handler)
    this.listeners = new Set() // all events
    this.reconnectTimer = null
    this.authTimer = null
    this.pingTimer = null
    this.awaitingPong = null
    this.onSessionEnded = null
    this.resyncListeners = new Set()
    // The browser may keep a WebSocket open while the network is gone: drop it at once
    // and reconnect (with resume) when the network returns.
    this._onOffline = () => {
      if (this.wanted && this.ws) this._drop(4000, 'offline')
    }
    this._onOnline = () => {
      if (this.wanted && !this.ws && this.reconnectTimer) {
        clearTimeout(this.reconnectTimer)
        this.reconnectTimer = null
        this._open()
      }
    }
  }

  nextId() {
    this.seq += 1
    return String(this.seq)
  }

  /** Open (or keep) the connection. Does nothing without a token. */
  connect() {
    this.wanted = true
    window.addEventListener('online', this._onOnline)
    window.addEventListener('offline', this._onOffline)
    if (this.ws || this.reconnectTimer) return
    this.attempt = 0
    this._open()
  }

  /** Close on purpose (logout): no reconnect. */
  disconnect() {
    this.wanted = false
    window.removeEventListener('online', this._onOnline)
    window.removeEventListener('offline', this._onOffline)
    clearTimeout(this.reconnectTimer)
    this.reconnectTimer = null
    this._teardown(1000, 'client logout')
    this._rejectWaiters('closed', '实时连接已关闭')
    this.topics.clear()
    realtimeState.status = 'idle'
    realtimeState.user = null
    realtimeState.retryInMs = null
  }

  _open() {
    const token = getToken()
    if (!token) {
      realtimeState.status = 'idle'
      this.wanted = false
      return
    }
    realtimeState.status = this.attempt > 0 ? 'reconnecting' : 'connecting'
    realtimeState.retryInMs = null
    let ws
    try {
      ws = new WebSocket(wsUrl())
    } catch {
      this._scheduleReconnect()
      return
    }
    this.ws = ws
    ws.onopen = () => {
      if (ws !== this.ws) return
      realtimeState.status = 'authenticating'
      const authId = this.nextId()
      this.authId = authId
      this._sendRaw({ type: 'auth', id: authId, token })
      this.authTimer = setTimeout(() => {
        if (ws === this.ws && realtimeState.status !== 'connected') this._drop(4000, 'auth timeout')
      }, AUTH_TIMEOUT_MS)
    }
    ws.onmessage = (ev) => {
      if (ws !== this.ws) return
      let msg
      try {
        msg = JSON.parse(ev.data)
      } catch {
        return
      }
      this._handle(msg)
    }
    ws.onerror = () => {
      /* a close event follows */
    }
    ws.onclose = (ev) => {
      if (ws !== this.ws) return
      this._onClosed(ev.code, ev.reason)
    }
  }

  _handle(msg) {
    switch (msg.type) {
      case 'auth.ok':
        clearTimeout(this.authTimer)
        this.attempt = 0
        realtimeState.status = 'connected'
        realtimeState.user = msg.user || null
        realtimeState.heartbeat = msg.heartbeat || 25
        this._startHeartbeat(realtimeState.heartbeat)
        this._resubscribe()
        break
      case 'pong':
        this.awaitingPong = null
        break
      case 'resync':
        // the server lost events (e.g. its Redis link came back): sync from the last seq
        for (const h of this.resyncListeners) safeCall(h, msg)
        break
      case 'reply': {
        const p = this.pending.get(msg.reply_to)
        if (!p) break
        this.pending.delete(msg.reply_to)
        clearTimeout(p.timer)
        if (msg.ok === false) p.reject(new RealtimeError(msg.code || 'failed', msg.message))
        else p.resolve(msg)
        break
      }
      case 'error': {
        const p = msg.reply_to ? this.pending.get(msg.reply_to) : null
        if (p) {
          this.pending.delete(msg.reply_to)
          clearTimeout(p.timer)
          p.reject(new RealtimeError(msg.code, msg.message))
        }
        break
      }
      case 'event': {
        const handlers = this.topics.get(msg.topic)
        if (handlers) for (const h of handlers) safeCall(h, msg)
        for (const h of this.listeners) safeCall(h, msg)
        break
      }
      default:
        break
    }
  }

  _startHeartbeat(seconds) {
    clearInterval(this.pingTimer)
    this.awaitingPong = null
    const interval = Math.max(5, seconds) * 1000
    this.pingTimer = setInterval(() => {
      if (this.awaitingPong) {
        // previous ping got no pong within one interval: the link is dead
        this._drop(4000, 'heartbeat timeout')
        return
      }
      const id = this.nextId()
      this.awaitingPong = id
      this._sendRaw({ type: 'ping', id })
    }, interval)
  }

  _sendRaw(obj) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(obj))
      return true
    }
    return false
  }

  /** Send a request frame and wait for its reply. */
  _request(frame) {
    return new Promise((resolve, reject) => {
      if (realtimeState.status !== 'connected') {
        reject(new RealtimeError('not_connected', '实时连接未建立'))
        return
      }
      const id = this.nextId()
      const timer = setTimeout(() => {
        this.pending.delete(id)
        reject(new RealtimeError('timeout', '实时服务响应超时'))
      }, REQUEST_TIMEOUT_MS)
      this.pending.set(id, { resolve, reject, timer })
      if (!this._sendRaw({ ...frame, id })) {
        clearTimeout(timer)
        this.pending.delete(id)
        reject(new RealtimeError('not_connected', '实时连接未建立'))
      }
    })
  }

  /**
   * Subscribe to a topic. The handler gets every {"type":"event"} frame of that topic.
   * Resolves when the server replies ok (or immediately-queued if not yet connected:
   * the subscription is sent after auth.ok and the promise settles then).
   */
  subscribe(topic, handler) {
    let set = this.topics.get(topic)
    const isNew = !set
    if (!set) {
      set = new Set()
      this.topics.set(topic, set)
    }
    if (handler) set.add(handler)
    if (!isNew && realtimeState.status === 'connected') return Promise.resolve({ ok: true })
    if (realtimeState.status !== 'connected') {
      return new Promise((resolve, reject) => {
        const waiters = (this.subWaiters ||= new Map())
        const list = waiters.get(topic) || []
        list.push({ resolve, reject })
        waiters.set(topic, list)
      })
    }
    return this._request({ type: 'subscribe', topic }).catch((e) => {
      this.topics.delete(topic)
      throw e
    })
  }

  /** Remove a handler (or all handlers) of a topic; sends unsubscribe when none remain. */
  unsubscribe(topic, handler) {
    const set = this.topics.get(topic)
    if (!set) return Promise.resolve({ ok: true })
    if (handler) set.delete(handler)
    if (handler && set.size > 0) return Promise.resolve({ ok: true })
    this.topics.delete(topic)
    if (realtimeState.status !== 'connected') return Promise.resolve({ ok: true })
    return this._request({ type: 'unsubscribe', topic })
  }

  /** Send any request frame (e.g. im.send, im.sync); resolves with the reply frame (data in .data). */
  request(frame) {
    return this._request(frame)
  }

  /** Called on a {"type":"resync"} frame. Returns an unlisten function. */
  onResync(handler) {
    this.resyncListeners.add(handler)
    return () => this.resyncListeners.delete(handler)
  }

  /** Listen to every event frame. Returns an unlisten function. */
  onEvent(handler) {
    this.listeners.add(handler)
    return () => this.listeners.delete(handler)
  }

  _resubscribe() {
    const waiters = this.subWaiters || new Map()
    this.subWaiters = new Map()
    for (const topic of [...this.topics.keys()]) {
      const list = waiters.get(topic) || []
      this._request({ type: 'subscribe', topic }).then(
        (r) => list.forEach((w) => w.resolve(r)),
        (e) => {
          if (e.code !== 'not_connected' && e.code !== 'timeout') this.topics.delete(topic)
          list.forEach((w) => w.reject(e))
        },
      )
    }
  }

  _clearTimers() {
    clearTimeout(this.authTimer)
    clearInterval(this.pingTimer)
    this.authTimer = null
    this.pingTimer = null
    this.awaitingPong = null
  }

  _rejectPending(code, message) {
    for (const [, p] of this.pending) {
      clearTimeout(p.timer)
      p.reject(new RealtimeError(code, message))
    }
    this.pending.clear()
  }

  _rejectWaiters(code, message) {
    if (!this.subWaiters) return
    for (const list of this.subWaiters.values()) list.forEach((w) => w.reject(new RealtimeError(code, message)))
    this.subWaiters = new Map()
  }

  _teardown(code, reason) {
    this._clearTimers()
    const ws = this.ws
    this.ws = null
    if (ws) {
      ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null
      try {
        ws.close(code, reason)
      } catch {
        /* ignore */
      }
    }
    this._rejectPending('closed', '实时连接已断开')
  }

  /** Our side gives up on a socket (auth/heartbeat timeout): reconnect. */
  _drop(code, reason) {
    this._teardown(code, reason)
    this._scheduleReconnect()
  }

  _onClosed(code) {
    realtimeState.lastCloseCode = code
    this._teardown()
    if (code === CLOSE_SESSION_ENDED) {
      this.wanted = false
      realtimeState.status = 'ended'
      realtimeState.user = null
      clearToken()
      this._rejectWaiters('session_ended', '会话已结束')
      this.topics.clear()
      if (this.onSessionEnded) this.onSessionEnded(code)
      return
    }
    this._scheduleReconnect()
  }

  _scheduleReconnect() {
    if (!this.wanted || !getToken()) {
      realtimeState.status = 'idle'
      return
    }
    const delay = backoffDelay(this.attempt)
    this.attempt += 1
    realtimeState.status = 'reconnecting'
    realtimeState.user = null
    realtimeState.retryInMs = delay
    clearTimeout(this.reconnectTimer)
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null
      if (this.wanted) this._open()
    }, delay)
  }
}

function safeCall(fn, arg) {
  try {
    fn(arg)
  } catch (e) {
    console.error('[realtime] handler failed', e)
  }
}

export const realtime = new RealtimeClient()
export default realtime
