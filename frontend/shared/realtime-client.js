// The realtime client for `/ws/` (docs/realtime-protocol.md), shared by the console and the
// patient app (H5, mp-weixin, mp-alipay). No platform code here: the socket comes from an
// injected transport, and each app has a thin adapter (console: src/realtime.js, patient:
// src/utils/realtime.js) that supplies the URL, the credentials and the session-end action.
//
//   - first frame {"type":"auth","id":..,"token"|"ticket":..}; waits for auth.ok (10 s)
//   - pings every `heartbeat` seconds (from auth.ok); nothing heard for two heartbeats drops
//     the socket
//   - reconnects with jittered exponential backoff (1 s, 2 s, 4 s .. capped at 30 s, each
//     times 0.5-1.5), at once when the network or the app comes back; never after close
//     4010 (session ended: onSessionEnded, no reconnect)
//   - request(frame) sends with an id and settles on the frame's reply / error (10 s timeout)
//   - subscribe(topic, handler) holds a topic (re-subscribed after every reconnect, before
//     the status turns 'open' so resume requests follow the subscriptions); the handler
//     gets each {"type":"event"} frame of it
//   - {"type":"unsubscribed","topic","reason"}: the topic is dropped locally (not
//     re-subscribed) and its handlers, the '*' listeners and onUnsubscribed listeners get
//     the frame
//   - {"type":"resync"}: onResync listeners (the chat resumes with im.sync from its seqs)
//   - foreground() / background(): app show / hide hooks (mini-programs)
//
// Status: idle | connecting | authenticating | open | reconnecting | closed | ended
//
// Transport: { open(url, { onOpen(), onMessage(text), onClose(code, reason), onError() })
//   -> socket { send(text) -> bool, close(code, reason) } }. Callbacks after the first
// close / error of a socket are ignored, so a transport may report both.

export const CLOSE_CODES = Object.freeze({
  AUTH_FAILED: 4001,
  ORIGIN_REFUSED: 4003,
  RATE_LIMITED: 4008,
  FRAME_TOO_BIG: 4009,
  SESSION_ENDED: 4010,
  PROTOCOL_ERROR: 4011,
  TOO_SLOW: 4012,
})

const MIN_DELAY_MS = 1000
const MAX_DELAY_MS = 30000
const AUTH_TIMEOUT_MS = 10000
const REQUEST_TIMEOUT_MS = 10000
const DEFAULT_HEARTBEAT_S = 25
const BARE = Symbol('bare') // a subscribe() without a handler

export class RealtimeError extends Error {
  constructor(code, message) {
    super(message || code)
    this.name = 'RealtimeError'
    this.code = code
  }
}

/** Delay before reconnect attempt `attempt` (0-based): min(30 s, 1 s * 2^n) * [0.5, 1.5), <= 30 s. */
export function backoffDelay(attempt, random = Math.random) {
  const base = Math.min(MAX_DELAY_MS, MIN_DELAY_MS * Math.pow(2, Math.max(0, attempt)))
  return Math.round(Math.min(MAX_DELAY_MS, base * (0.5 + random())))
}

/** Transport over the browser's WebSocket (console, patient H5). */
export const browserTransport = {
  open(url, h) {
    const ws = new WebSocket(url)
    ws.onopen = () => h.onOpen()
    ws.onmessage = (ev) => h.onMessage(typeof ev.data === 'string' ? ev.data : '')
    ws.onerror = () => {
      /* a close event follows */
    }
    ws.onclose = (ev) => h.onClose(ev.code, ev.reason)
    return {
      send(text) {
        if (ws.readyState !== 1) return false
        ws.send(text)
        return true
      },
      close(code, reason) {
        ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null
        try {
          ws.close(code, reason)
        } catch (e) {
          /* ignore */
        }
      },
    }
  },
}

function safeCall(fn, arg) {
  try {
    fn(arg)
  } catch (e) {
    console.error('[realtime] listener failed', e)
  }
}

const RETRYABLE = ['closed', 'timeout']

export class RealtimeClient {
  /**
   * options:
   *   transport               see above (default browserTransport)
   *   getUrl() -> string      socket URL
   *   getToken() -> string    no token: stay closed
   *   credentials(token) -> {token} | {ticket} (may be async; an error with status 401 stops)
   *   watchNetwork(onChange(connected))  install network listeners once
   *   onSessionEnded(code)    after close 4010 (clear the token, go to login)
   *   onAuthFailed(code)      after close 4001 (then reconnects)
   */
  constructor(options = {}) {
    this.options = {
      transport: browserTransport,
      credentials: (token) => ({ token }),
      ...options,
    }
    this.state = { status: 'idle', user: null, heartbeat: DEFAULT_HEARTBEAT_S, lastCloseCode: null, retryInMs: null }
    this._socket = null
    this._opening = false
    this._authed = false
    this._wanted = false
    this._generation = 0
    this._attempt = 0
    this._id = 0
    this._lastSeen = 0
    this._reconnectTimer = null
    this._heartbeatTimer = null
    this._authTimer = null
    this._pending = new Map() // id -> {resolve, reject, timer}
    this._topics = new Map() // topic -> Set(handler | BARE): held, re-subscribed on reconnect
    this._waiting = new Map() // topic -> [{resolve, reject}] subscribed before auth.ok
    this._listeners = new Map() // topic or '*' -> Set(fn): listen without holding
    this._stateListeners = new Set()
    this._statusListeners = new Set()
    this._resyncListeners = new Set()
    this._unsubscribedListeners = new Set()
    this._networkHooked = false
  }

  get status() {
    return this.state.status
  }

  get user() {
    return this.state.user
  }

  isOpen() {
    return this.state.status === 'open'
  }

  /** True while the client wants a connection or holds a socket. */
  isActive() {
    return this._wanted || !!this._socket || this._opening
  }

  // ---------- lifecycle ----------

  /** Open (or keep) the connection. Does nothing without a token. */
  connect() {
    this._hookNetwork()
    this._wanted = true
    if (this._socket || this._opening || this._reconnectTimer) return
    this._attempt = 0
    this._open()
  }

  /** Close on purpose (logout): no reconnect, subscriptions forgotten. */
  disconnect() {
    this._wanted = false
    this._generation++
    this._clearReconnect()
    this._teardown(1000, 'client closing', new RealtimeError('closed', '实时连接已关闭'))
    this._topics.clear()
    this._rejectWaiting(new RealtimeError('closed', '实时连接已关闭'))
    this._attempt = 0
    this._set({ status: 'closed', user: null, retryInMs: null })
  }

  /** The app came to the foreground: reconnect now if we were connected or waiting to. */
  foreground() {
    if (!this.options.getToken()) return
    if (this._reconnectTimer) {
      this._clearReconnect()
      this._attempt = 0
      this._open()
      return
    }
    if (this._socket && this._authed) {
      // the platform may have cut the socket silently while the app was hidden
      if (Date.now() - this._lastSeen > this._staleMs()) this._dropAndRetry()
      else if (this._hiddenAt) this._sendRaw({ type: 'ping', id: this._nextId() }) // prove it at once
      this._hiddenAt = null
      return
    }
    this._hiddenAt = null
    if (this.state.status !== 'idle') this.connect()
  }

  /** The app went to the background. The socket is kept; the platform may close it. */
  background() {
    this._hiddenAt = Date.now()
  }

  // ---------- listeners ----------

  /** Called with the state object on every change. Returns an off function. */
  onState(fn) {
    this._stateListeners.add(fn)
    return () => this._stateListeners.delete(fn)
  }

  /** Called with the status now and on every change. Returns an off function. */
  onStatus(fn) {
    this._statusListeners.add(fn)
    safeCall(fn, this.state.status)
    return () => this._statusListeners.delete(fn)
  }

  /** Listen to a topic's frames ('*': every topic) without holding a subscription. */
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

  /** Every event frame. Returns an off function. */
  onEvent(fn) {
    return this.on('*', fn)
  }

  /** {"type":"resync"} from the server: events may have been missed. */
  onResync(fn) {
    this._resyncListeners.add(fn)
    return () => this._resyncListeners.delete(fn)
  }

  /** The server withdrew a topic ({type:'unsubscribed', topic, reason}). */
  onUnsubscribed(fn) {
    this._unsubscribedListeners.add(fn)
    return () => this._unsubscribedListeners.delete(fn)
  }

  // ---------- topics and requests ----------

  /**
   * Hold a topic; `handler` (optional) gets its event frames. Resolves on the server's ok;
   * before auth.ok the subscribe is sent after it and the promise settles then.
   */
  subscribe(topic, handler) {
    let set = this._topics.get(topic)
    const isNew = !set
    if (isNew) {
      set = new Set()
      this._topics.set(topic, set)
    }
    set.add(handler || BARE)
    if (!this._authed) {
      return new Promise((resolve, reject) => {
        if (!this._waiting.has(topic)) this._waiting.set(topic, [])
        this._waiting.get(topic).push({ resolve, reject })
      })
    }
    if (!isNew) return Promise.resolve({ ok: true })
    return this._sendSubscribe(topic)
  }

  /** Drop a handler (or, without one, the whole topic); sends unsubscribe when none remain. */
  unsubscribe(topic, handler) {
    const set = this._topics.get(topic)
    if (!set) return Promise.resolve({ ok: true })
    if (handler) {
      set.delete(handler)
      if (set.size > 0) return Promise.resolve({ ok: true })
    }
    this._topics.delete(topic)
    const waiters = this._waiting.get(topic)
    if (waiters) {
      this._waiting.delete(topic)
      waiters.forEach((w) => w.reject(new RealtimeError('cancelled', '订阅已取消')))
    }
    if (!this._authed) return Promise.resolve({ ok: true })
    return this._request({ type: 'unsubscribe', topic })
  }

  /** Send any request frame (im.send, im.sync, media.*); resolves with the reply (data in .data). */
  request(frame) {
    return this._request(frame)
  }

  // ---------- internals ----------

  _set(patch) {
    const was = this.state.status
    Object.assign(this.state, patch)
    this._stateListeners.forEach((fn) => safeCall(fn, this.state))
    if (this.state.status !== was) this._statusListeners.forEach((fn) => safeCall(fn, this.state.status))
  }

  _nextId() {
    this._id += 1
    return String(this._id)
  }

  _staleMs() {
    return this.state.heartbeat * 1000 * 2 + 5000
  }

  _hookNetwork() {
    if (this._networkHooked || !this.options.watchNetwork) return
    this._networkHooked = true
    // The browser may keep a socket open while the network is gone: drop it at once, and
    // reconnect (with resume) as soon as the network returns.
    this.options.watchNetwork((connected) => {
      if (!this._wanted) return
      if (!connected) {
        if (this._socket || this._opening) this._dropAndRetry()
      } else if (this._reconnectTimer) {
        this._clearReconnect()
        this._attempt = 0
        this._open()
      }
    })
  }

  async _open() {
    const gen = ++this._generation
    const token = this.options.getToken()
    if (!token) {
      this._wanted = false
      this._set({ status: 'idle', user: null, retryInMs: null })
      return
    }
    this._set({ status: this._attempt > 0 ? 'reconnecting' : 'connecting', retryInMs: null })
    this._opening = true

    let creds
    try {
      creds = await this.options.credentials(token)
      if (!creds || !(creds.token || creds.ticket)) throw new RealtimeError('ticket_missing', '未获取到连接票据')
    } catch (e) {
      this._opening = false
      if (gen !== this._generation || !this._wanted) return
      if (e && e.status === 401) {
        // the HTTP layer has cleared the token and gone to login
        this._wanted = false
        this._set({ status: 'closed', user: null })
        return
      }
      this._scheduleReconnect()
      return
    }
    if (gen !== this._generation || !this._wanted) {
      this._opening = false
      return
    }

    const authFrame = creds.ticket ? { type: 'auth', ticket: creds.ticket } : { type: 'auth', token: creds.token }
    let done = false
    const live = () => gen === this._generation && !done
    let socket = null
    try {
      socket = this.options.transport.open(this.options.getUrl(), {
        onOpen: () => {
          if (!live()) return
          this._set({ status: 'authenticating' })
          this._lastSeen = Date.now()
          this._sendRaw({ ...authFrame, id: this._nextId() })
          this._authTimer = setTimeout(() => {
            if (live() && !this._authed) this._dropAndRetry()
          }, AUTH_TIMEOUT_MS)
        },
        onMessage: (text) => {
          if (live()) this._onFrame(text)
        },
        onClose: (code, reason) => {
          if (!live()) return
          done = true
          this._onClosed(code, reason)
        },
        onError: () => {
          // some platforms report an error without a close afterwards: treat it as one
          if (!live()) return
          done = true
          this._onClosed(null, 'error')
        },
      })
    } catch (e) {
      socket = null
    }
    this._opening = false
    if (!socket) {
      this._scheduleReconnect()
      return
    }
    if (gen !== this._generation) {
      socket.close(1000, 'client closing')
      return
    }
    this._socket = socket
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
        this._settle(msg.reply_to, msg.ok === false ? new RealtimeError(msg.code || 'error', msg.message) : null, msg)
        break
      case 'error':
        if (msg.reply_to !== undefined && msg.reply_to !== null) {
          this._settle(msg.reply_to, new RealtimeError(msg.code || 'error', msg.message), msg)
        }
        break
      case 'event':
        this._dispatch(msg.topic, { ...msg, data: msg.data || {} })
        break
      case 'unsubscribed':
        this._onUnsubscribed(msg)
        break
      case 'resync':
        this._resyncListeners.forEach((fn) => safeCall(fn, msg))
        break
      default:
        break
    }
  }

  _onAuthOk(msg) {
    clearTimeout(this._authTimer)
    this._authTimer = null
    this._authed = true
    this._attempt = 0
    const heartbeat = Number(msg.heartbeat) > 0 ? Number(msg.heartbeat) : DEFAULT_HEARTBEAT_S
    this.state.heartbeat = heartbeat
    this._startHeartbeat()
    // Subscriptions first (also those asked for before auth.ok), then 'open': listeners that
    // resume with im.sync send after the subscribes.
    const waiting = this._waiting
    this._waiting = new Map()
    for (const topic of [...this._topics.keys()]) {
      const list = waiting.get(topic) || []
      this._sendSubscribe(topic).then(
        (r) => list.forEach((w) => w.resolve(r)),
        (e) => list.forEach((w) => w.reject(e)),
      )
    }
    this._set({ status: 'open', user: msg.user || null, heartbeat, retryInMs: null })
  }

  _sendSubscribe(topic) {
    return this._request({ type: 'subscribe', topic }).catch((e) => {
      if (!e || !RETRYABLE.includes(e.code)) this._topics.delete(topic) // e.g. topic.forbidden
      throw e
    })
  }

  _dispatch(topic, frame) {
    const held = this._topics.get(topic)
    if (held) held.forEach((fn) => fn !== BARE && safeCall(fn, frame))
    const set = this._listeners.get(topic)
    if (set) set.forEach((fn) => safeCall(fn, frame))
    const all = this._listeners.get('*')
    if (all) all.forEach((fn) => safeCall(fn, frame))
  }

  _onUnsubscribed(msg) {
    const topic = msg.topic
    const frame = { type: 'unsubscribed', topic, reason: msg.reason || null }
    const held = this._topics.get(topic)
    this._topics.delete(topic)
    const waiters = this._waiting.get(topic)
    if (waiters) {
      this._waiting.delete(topic)
      waiters.forEach((w) => w.reject(new RealtimeError('topic.forbidden', '订阅已被服务器撤销')))
    }
    if (held) held.forEach((fn) => fn !== BARE && safeCall(fn, frame))
    const set = this._listeners.get(topic)
    if (set) set.forEach((fn) => safeCall(fn, frame))
    const all = this._listeners.get('*')
    if (all) all.forEach((fn) => safeCall(fn, frame))
    this._unsubscribedListeners.forEach((fn) => safeCall(fn, frame))
  }

  _request(frame) {
    if (!this._socket || !this._authed) {
      return Promise.reject(new RealtimeError('closed', '实时连接未建立'))
    }
    const id = this._nextId()
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this._pending.delete(id)
        reject(new RealtimeError('timeout', '实时服务响应超时'))
      }, REQUEST_TIMEOUT_MS)
      this._pending.set(id, { resolve, reject, timer })
      if (!this._sendRaw({ ...frame, id })) {
        clearTimeout(timer)
        this._pending.delete(id)
        reject(new RealtimeError('closed', '实时连接未建立'))
      }
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
    if (!this._socket) return false
    try {
      return this._socket.send(JSON.stringify(frame)) !== false
    } catch (e) {
      return false // the close callback or the heartbeat deals with it
    }
  }

  _startHeartbeat() {
    clearInterval(this._heartbeatTimer)
    const intervalMs = Math.max(5, this.state.heartbeat) * 1000
    this._heartbeatTimer = setInterval(() => {
      if (Date.now() - this._lastSeen > this._staleMs()) {
        this._dropAndRetry() // nothing heard for two heartbeats: the link is dead
        return
      }
      this._sendRaw({ type: 'ping', id: this._nextId() })
    }, intervalMs)
  }

  // Forget the current socket (timers, socket, pending requests); _wanted is unchanged.
  _teardown(code, reason, err) {
    clearTimeout(this._authTimer)
    clearInterval(this._heartbeatTimer)
    this._authTimer = null
    this._heartbeatTimer = null
    this._authed = false
    this._opening = false
    const socket = this._socket
    this._socket = null
    if (socket) {
      try {
        socket.close(code || 1000, reason || 'client closing')
      } catch (e) {
        /* ignore */
      }
    }
    this._pending.forEach((p) => {
      clearTimeout(p.timer)
      p.reject(err)
    })
    this._pending.clear()
  }

  // Our side gives up on a socket (auth / heartbeat timeout, network gone): reconnect.
  _dropAndRetry() {
    this._generation++
    this._teardown(4000, 'client drop', new RealtimeError('closed', '实时连接已断开'))
    this._scheduleReconnect()
  }

  _onClosed(code) {
    this._generation++ // ignore anything this socket still reports
    this._teardown(1000, 'closed', new RealtimeError('closed', '实时连接已断开'))
    this._set({ lastCloseCode: code || null })
    if (code === CLOSE_CODES.SESSION_ENDED) {
      // logout elsewhere, account disabled, role or password changed: to login, no reconnect
      this._wanted = false
      this._clearReconnect()
      this._topics.clear()
      this._rejectWaiting(new RealtimeError('session_ended', '会话已结束'))
      this._set({ status: 'ended', user: null, retryInMs: null })
      if (this.options.onSessionEnded) safeCall(this.options.onSessionEnded, code)
      return
    }
    if (!this._wanted) {
      this._set({ status: 'closed', user: null })
      return
    }
    if (code === CLOSE_CODES.AUTH_FAILED && this.options.onAuthFailed) safeCall(this.options.onAuthFailed, code)
    this._scheduleReconnect()
  }

  _scheduleReconnect() {
    if (!this._wanted || !this.options.getToken()) {
      this._wanted = false
      this._set({ status: 'idle', user: null, retryInMs: null })
      return
    }
    if (this._reconnectTimer) return
    const delay = backoffDelay(this._attempt)
    this._attempt += 1
    this._set({ status: 'reconnecting', user: null, retryInMs: delay })
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
    this._waiting.forEach((list) => list.forEach((w) => w.reject(err)))
    this._waiting.clear()
  }
}

export function createRealtimeClient(options) {
  return new RealtimeClient(options)
}
