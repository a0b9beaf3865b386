// The chat core (platform independent): per-conversation message store,
// outbox, resume after reconnect. One copy for both frontends; platform
// differences live only in each app's adapter (frontend/patient/src/utils/chat.js,
// frontend/console/src/chat/index.js).
//
// 约定（见 apps/im 与 docs/realtime-protocol.md）：
//   - 每个会话的消息按 seq 去重；记录“最高连续 seq”（top），收到 seq > top+1 的消息即为缺口，用 im.sync 补齐；
//   - 重连（auth.ok 之后）和收到 {"type":"resync"} 时，所有打开的会话从 top 起同步；
//   - 发件箱持久化在存储中；未确认的消息在重连后用同一个 client_msg_id 重发（服务器幂等）；
//   - 状态：pending（发送中）/ sent（已确认，有 seq）/ failed（服务器拒绝，可手动重试）。
//
// adapter = {
//   storage: { get(key) -> string|null, set(key, string), remove(key) },
//   isOpen() -> bool,                       // 实时连接已认证
//   onOpen(fn) -> off,                      // 每次连接就绪（含重连）后调用，且在重新订阅之后
//   onResync(fn) -> off,                    // 收到 {"type":"resync"}
//   request(frame) -> Promise<data>,        // 套接字请求，resolve 为 reply.data
//   subscribe(topic, handler) -> off,       // handler({event, data})
//   api: { conversations(), detail(id), messages(id, query), send(id, payload), read(id, seq), recall(id, seq) },
// }
// Shared by the console and the patient app (each imports it through a small
// wrapper that supplies Vue's reactive()): the patient app's uni-app build maps
// 'vue' to its own runtime, so this file must not import it itself.
let reactive = (value) => value
import { cardPreview, cardTag } from './cards.js'

export function useReactive(fn) {
  reactive = fn
}

export const RECALL_WINDOW_MS = 2 * 60 * 1000
const PAGE = 30
const SYNC_PAGE = 100
const TYPING_SHOW_MS = 4000
const TYPING_SEND_MS = 2000
const RETRY_MS = 5000

// 连接类错误：保留在发件箱里，稍后用同一 client_msg_id 重发
const TRANSIENT = ['closed', 'not_connected', 'timeout', 'network_error', 'internal_error', 'cancelled', 'rate_limited']

export function isTransient(err) {
  if (!err) return true
  const code = err.code || ''
  if (TRANSIENT.indexOf(code) >= 0) return true
  if (/^http_(0|5\d\d)$/.test(code)) return true
  const status = err.status || 0
  return status === 0 || status >= 500
}

function newClientMsgId() {
  const rnd = Math.random().toString(36).slice(2, 10)
  return `c${Date.now().toString(36)}${rnd}`
}

// 会话列表里“最后一条消息”的预览文字；卡片的名称来自 cards.js 的模板
export function cardLabel(type) {
  return cardTag(type)
}

export function messagePreview(m, me) {
  if (!m) return ''
  if (m.recalled) return '消息已撤回'
  const body = m.body || {}
  switch (m.kind) {
    case 'text':
      return body.text || ''
    case 'image':
      return '[图片]'
    case 'voice':
      return '[语音]'
    case 'file':
      return `[文件] ${body.filename || ''}`.trim()
    case 'card':
      return cardPreview(body)
    case 'system':
      return body.text || '[系统消息]'
    case 'recall':
      return m.sender === me ? '你撤回了一条消息' : '对方撤回了一条消息'
    default:
      return '[消息]'
  }
}

// ---------------------------------------------------------------------------------------
// 一个会话的消息仓库

class ConversationStore {
  constructor(client, id) {
    this.client = client
    this.id = id
    this.byseq = new Map()
    this.readSent = 0
    this.syncing = null
    this.syncAgain = false
    this.typingTimer = null
    this.lastTypingSent = 0
    this.state = reactive({
      id,
      loaded: false,
      loading: false,
      loadingOlder: false,
      hasOlder: false,
      items: [], // 已确认的消息（含 recall 事件消息），按 seq 升序
      members: [],
      typing: false,
      typingUser: null,
      floor: 0, // 已加载的最低 seq - 1
      top: 0, // 最高连续 seq
      visible: false,
      error: '',
    })
  }

  get me() {
    return this.client.userId
  }

  // 连同发件箱中本会话未确认的消息，供界面渲染
  get pending() {
    return this.client.outbox.items.filter((o) => o.conversation === this.id)
  }

  async load() {
    const s = this.state
    if (s.loading) return
    s.loading = true
    s.error = ''
    try {
      const [detail, page] = await Promise.all([
        this.client.adapter.api.detail(this.id),
        s.loaded ? Promise.resolve(null) : this.client.adapter.api.messages(this.id, { limit: PAGE }),
      ])
      s.members = (detail && detail.members) || []
      if (page) {
        const items = page.items || []
        s.floor = items.length ? items[0].seq - 1 : 0
        s.hasOlder = !!page.has_more && s.floor > 0
        s.top = Math.max(s.top, s.floor)
        this.insertMany(items)
        s.loaded = true
      }
    } catch (e) {
      s.error = (e && e.message) || '加载失败'
    } finally {
      s.loading = false
    }
    // 拉取首屏与订阅之间可能错过的消息
    await this.sync()
    this.maybeMarkRead()
  }

  async loadOlder() {
    const s = this.state
    if (s.loadingOlder || !s.hasOlder || !s.loaded) return 0
    s.loadingOlder = true
    try {
      const page = await this.client.adapter.api.messages(this.id, { before_seq: s.floor + 1, limit: PAGE })
      const items = (page && page.items) || []
      if (items.length) s.floor = Math.min(s.floor, items[0].seq - 1)
      s.hasOlder = !!(page && page.has_more) && s.floor > 0
      this.insertMany(items)
      return items.length
    } catch (e) {
      return 0
    } finally {
      s.loadingOlder = false
    }
  }

  // 从最高连续 seq 起补齐（套接字优先，未连接时走 HTTP）
  sync() {
    if (!this.state.loaded) return Promise.resolve()
    if (this.syncing) {
      this.syncAgain = true
      return this.syncing
    }
    const run = async () => {
      for (let guard = 0; guard < 200; guard++) {
        const after = this.state.top
        let page
        try {
          if (this.client.adapter.isOpen()) {
            page = await this.client.adapter.request({
              type: 'im.sync',
              conversation: this.id,
              after_seq: after,
              limit: SYNC_PAGE,
            })
          } else {
            page = await this.client.adapter.api.messages(this.id, { after_seq: after, limit: SYNC_PAGE })
          }
        } catch (e) {
          return // 下次重连 / resync 时再补
        }
        this.insertMany((page && page.items) || [])
        const more = !!(page && page.has_more)
        if (!more && !this.syncAgain) return
        this.syncAgain = false
        if (!more && this.state.top === after) return
      }
    }
    this.syncing = run().finally(() => {
      this.syncing = null
      this.maybeMarkRead()
    })
    return this.syncing
  }

  insertMany(list) {
    for (const m of list) this.insert(m, false)
    this.advance()
  }

  // 插入一条消息（按 seq 去重）；live=true 表示来自实时事件，可能触发缺口同步
  insert(m, live) {
    if (!m || typeof m.seq !== 'number' || m.conversation !== this.id) return
    const s = this.state
    const existing = this.byseq.get(m.seq)
    if (existing) {
      if (m.recalled && !existing.recalled) {
        existing.recalled = true
        existing.body = {}
      }
      return
    }
    const msg = reactive({ ...m })
    this.byseq.set(m.seq, msg)
    const items = s.items
    if (!items.length || items[items.length - 1].seq < m.seq) items.push(msg)
    else {
      let i = items.length - 1
      while (i >= 0 && items[i].seq > m.seq) i--
      items.splice(i + 1, 0, msg)
    }
    if (m.kind === 'recall' && m.body && typeof m.body.seq === 'number') {
      const orig = this.byseq.get(m.body.seq)
      if (orig) {
        orig.recalled = true
        orig.body = {}
      }
    }
    // 别人的新消息到了，输入提示结束
    if (live && m.sender !== this.me && s.typingUser === m.sender) this.stopTyping()
    this.client.outbox.ackedByMessage(m)
    if (live) {
      this.advance()
      if (m.seq > s.top + 1) this.sync() // 缺口
    }
  }

  advance() {
    const s = this.state
    let top = Math.max(s.top, s.floor)
    while (this.byseq.has(top + 1)) top++
    s.top = top
  }

  onEvent(evt) {
    const data = evt.data || {}
    if (evt.event === 'im.message') {
      this.insert(data, true)
      this.maybeMarkRead()
    } else if (evt.event === 'im.receipt') {
      const member = this.state.members.find((x) => x.user === data.user)
      if (member) {
        member.read_seq = Math.max(member.read_seq || 0, data.read_seq || 0)
        member.delivered_seq = Math.max(member.delivered_seq || 0, data.delivered_seq || 0)
      } else if (data.user) {
        this.state.members.push({ user: data.user, read_seq: data.read_seq || 0, delivered_seq: data.delivered_seq || 0 })
      }
    } else if (evt.event === 'im.typing') {
      if (data.user && data.user !== this.me) {
        const s = this.state
        s.typing = true
        s.typingUser = data.user
        clearTimeout(this.typingTimer)
        this.typingTimer = setTimeout(() => this.stopTyping(), TYPING_SHOW_MS)
      }
    }
  }

  stopTyping() {
    clearTimeout(this.typingTimer)
    this.state.typing = false
    this.state.typingUser = null
  }

  setVisible(v) {
    this.state.visible = !!v
    if (v) this.maybeMarkRead()
  }

  // 当前页面可见时，把已看到的最高连续 seq 标记为已读（累计）
  maybeMarkRead() {
    const s = this.state
    if (!s.visible || !s.loaded) return
    const seq = s.top
    if (seq <= this.readSent) return
    const mine = s.members.find((x) => x.user === this.me)
    if (mine && mine.read_seq >= seq) {
      this.readSent = seq
      return
    }
    this.readSent = seq
    const adapter = this.client.adapter
    const done = (r) => {
      if (mine && r && typeof r.read_seq === 'number') mine.read_seq = Math.max(mine.read_seq || 0, r.read_seq)
      this.client.list.markRead(this.id, seq)
    }
    const p = adapter.isOpen() ? adapter.request({ type: 'im.read', conversation: this.id, seq }) : adapter.api.read(this.id, seq)
    p.then(done, () => {
      this.readSent = Math.min(this.readSent, seq - 1) // 稍后重试
    })
  }

  // 其他成员是否都已读到该 seq（用于自己发出的消息）
  readBy(seq) {
    const others = this.state.members.filter((x) => x.user !== this.me)
    if (!others.length) return null
    return others.every((x) => (x.read_seq || 0) >= seq)
  }

  memberName(userId) {
    const m = this.state.members.find((x) => x.user === userId)
    return (m && m.display_name) || ''
  }

  canRecall(m) {
    if (!m || m.sender !== this.me || m.recalled || typeof m.seq !== 'number') return false
    if (['text', 'image', 'voice', 'file'].indexOf(m.kind) < 0) return false
    return Date.now() - Date.parse(m.created_at) < RECALL_WINDOW_MS
  }

  async recall(seq) {
    const adapter = this.client.adapter
    const msg = adapter.isOpen()
      ? await adapter.request({ type: 'im.recall', conversation: this.id, seq })
      : await adapter.api.recall(this.id, seq)
    if (msg && typeof msg.seq === 'number') this.insert(msg, true)
    const orig = this.byseq.get(seq)
    if (orig) {
      orig.recalled = true
      orig.body = {}
    }
    return msg
  }

  sendTyping() {
    const now = Date.now()
    if (now - this.lastTypingSent < TYPING_SEND_MS || !this.client.adapter.isOpen()) return
    this.lastTypingSent = now
    this.client.adapter.request({ type: 'im.typing', conversation: this.id }).catch(() => {})
  }

  send(kind, body) {
    return this.client.outbox.enqueue(this.id, kind, body)
  }

  sendText(text) {
    const t = String(text || '')
    if (!t.trim()) return null
    return this.send('text', { text: t })
  }
}

// ---------------------------------------------------------------------------------------
// 发件箱：持久化，未确认的消息在重连后用同一 client_msg_id 重发

class Outbox {
  constructor(client) {
    this.client = client
    this.items = reactive([])
    this.inflight = new Set()
    this.timer = null
    this.key = ''
  }

  load(userId) {
    this.key = `ih_chat_outbox_${userId}`
    this.items.splice(0, this.items.length)
    let saved = []
    try {
      saved = JSON.parse(this.client.adapter.storage.get(this.key) || '[]') || []
    } catch (e) {
      saved = []
    }
    for (const o of saved) {
      if (o && o.client_msg_id && o.conversation) this.items.push({ ...o, state: o.state === 'failed' ? 'failed' : 'pending' })
    }
  }

  save() {
    if (!this.key) return
    const data = this.items.map((o) => ({
      client_msg_id: o.client_msg_id,
      conversation: o.conversation,
      kind: o.kind,
      body: o.body,
      created_at: o.created_at,
      state: o.state,
      error: o.error || '',
    }))
    try {
      if (data.length) this.client.adapter.storage.set(this.key, JSON.stringify(data))
      else this.client.adapter.storage.remove(this.key)
    } catch (e) {
      /* 存储满或不可用：仍在内存中重试 */
    }
  }

  enqueue(conversation, kind, body) {
    const item = {
      client_msg_id: newClientMsgId(),
      conversation,
      kind,
      body,
      created_at: new Date().toISOString(),
      state: 'pending',
      error: '',
    }
    this.items.push(item)
    this.save()
    this.trySend(item)
    return item
  }

  find(cmid) {
    return this.items.find((o) => o.client_msg_id === cmid)
  }

  remove(cmid) {
    const i = this.items.findIndex((o) => o.client_msg_id === cmid)
    if (i >= 0) {
      this.items.splice(i, 1)
      this.save()
    }
  }

  // 收到自己发出的消息（实时事件或同步）：发件箱中对应的条目即已确认
  ackedByMessage(m) {
    if (!m || m.sender !== this.client.userId || !m.client_msg_id) return
    if (this.find(m.client_msg_id)) this.remove(m.client_msg_id)
  }

  retry(cmid) {
    const item = this.find(cmid)
    if (!item) return
    item.state = 'pending'
    item.error = ''
    this.save()
    this.trySend(item)
  }

  flush() {
    for (const item of this.items.slice()) {
      if (item.state === 'pending') this.trySend(item)
    }
  }

  async trySend(item) {
    const cmid = item.client_msg_id
    if (this.inflight.has(cmid)) return
    this.inflight.add(cmid)
    const adapter = this.client.adapter
    const payload = { client_msg_id: cmid, kind: item.kind, body: item.body }
    try {
      let ack
      if (adapter.isOpen()) {
        ack = await adapter.request({ type: 'im.send', conversation: item.conversation, ...payload })
      } else {
        ack = await adapter.api.send(item.conversation, payload)
      }
      const message = {
        conversation: item.conversation,
        seq: ack.seq,
        sender: this.client.userId,
        kind: item.kind,
        body: ack.body && Object.keys(ack.body).length ? ack.body : item.body,
        client_msg_id: cmid,
        created_at: ack.created_at,
        recalled: !!ack.recalled,
      }
      this.remove(cmid)
      this.client.onAck(message)
    } catch (e) {
      const still = this.find(cmid)
      if (still) {
        if (isTransient(e)) {
          still.state = 'pending'
        } else {
          still.state = 'failed'
          still.error = (e && e.message) || '发送失败'
        }
        this.save()
      }
    } finally {
      this.inflight.delete(cmid)
      this.schedule()
    }
  }

  // 还有待发消息时定时重试（连接恢复后也会立即重试）
  schedule() {
    if (this.timer) return
    if (!this.items.some((o) => o.state === 'pending')) return
    this.timer = setTimeout(() => {
      this.timer = null
      this.flush()
    }, RETRY_MS)
  }
}

// ---------------------------------------------------------------------------------------
// 会话列表

class ConversationList {
  constructor(client) {
    this.client = client
    this.state = reactive({ items: [], loading: false, loaded: false, error: '' })
  }

  async load() {
    const s = this.state
    s.loading = true
    s.error = ''
    try {
      const r = await this.client.adapter.api.conversations()
      s.items.splice(0, s.items.length, ...((r && r.items) || []))
      s.loaded = true
    } catch (e) {
      s.error = (e && e.message) || '加载失败'
    } finally {
      s.loading = false
    }
  }

  find(id) {
    return this.state.items.find((c) => c.id === id)
  }

  onMessage(m) {
    const c = this.find(m.conversation)
    if (!c) return
    if (m.seq > (c.last_seq || 0)) {
      c.last_seq = m.seq
      c.last_message = m
      c.last_message_at = m.created_at
      if (m.sender !== this.client.userId) {
        const store = this.client.stores.get(m.conversation)
        const seen = store && store.state.visible
        if (!seen) c.unread = Math.max(0, c.last_seq - (c.read_seq || 0))
      } else {
        c.read_seq = Math.max(c.read_seq || 0, m.seq) // 自己发的不算未读
        c.unread = Math.max(0, c.last_seq - c.read_seq)
      }
      // 最近的会话排在最前
      const i = this.state.items.indexOf(c)
      if (i > 0) {
        this.state.items.splice(i, 1)
        this.state.items.unshift(c)
      }
    } else if (m.kind === 'recall' && c.last_message && m.body && c.last_message.seq === m.body.seq) {
      c.last_message = { ...c.last_message, recalled: true, body: {} }
    }
  }

  markRead(id, seq) {
    const c = this.find(id)
    if (!c) return
    c.read_seq = Math.max(c.read_seq || 0, seq)
    c.unread = Math.max(0, (c.last_seq || 0) - c.read_seq)
  }
}

// ---------------------------------------------------------------------------------------

export class ChatClient {
  constructor(adapter) {
    this.adapter = adapter
    this.userId = null
    this.stores = new Map()
    this.watchers = new Map() // conversation id -> {count, off}
    this.outbox = new Outbox(this)
    this.list = new ConversationList(this)
    this.offs = []
    this.started = false
  }

  // 登录用户确定后调用（重复调用无副作用；换了用户会重置）
  start(userId) {
    if (this.started && this.userId === userId) return this
    this.stop()
    this.userId = userId
    this.outbox.load(userId)
    this.offs.push(this.adapter.onOpen(() => this.resume()))
    this.offs.push(this.adapter.onResync(() => this.resume()))
    // 用户级通知：未打开的会话也能实时更新列表（新会话则重新加载列表）
    this.offs.push(this.adapter.subscribe(`user:${userId}`, (evt) => this.onUserEvent(evt)))
    this.started = true
    if (this.adapter.isOpen()) this.resume()
    else this.outbox.schedule()
    return this
  }

  stop() {
    this.offs.forEach((off) => off && off())
    this.offs = []
    this.watchers.forEach((w) => w.off && w.off())
    this.watchers.clear()
    this.stores.clear()
    this.list.state.items.splice(0, this.list.state.items.length)
    this.list.state.loaded = false
    this.outbox.items.splice(0, this.outbox.items.length)
    this.outbox.key = ''
    this.started = false
    this.userId = null
  }

  // 重连或 resync：打开的会话从最高连续 seq 起补齐，发件箱重发
  resume() {
    for (const id of this.watchers.keys()) {
      const store = this.stores.get(id)
      // A conversation opened while offline never loaded its history: load it now.
      if (store) store.state.loaded ? store.sync() : store.load()
    }
    this.outbox.flush()
  }

  store(id) {
    id = Number(id)
    let s = this.stores.get(id)
    if (!s) {
      s = new ConversationStore(this, id)
      this.stores.set(id, s)
    }
    return s
  }

  // 订阅会话的实时事件（引用计数）；返回取消函数
  watch(id) {
    id = Number(id)
    let w = this.watchers.get(id)
    if (!w) {
      w = { count: 0, off: null }
      this.watchers.set(id, w)
      w.off = this.adapter.subscribe(`conv:${id}`, (evt) => this.onEvent(id, evt))
    }
    w.count++
    let done = false
    return () => {
      if (done) return
      done = true
      w.count--
      if (w.count <= 0 && this.watchers.get(id) === w) {
        this.watchers.delete(id)
        if (w.off) w.off()
      }
    }
  }

  // 打开一个会话：订阅、加载、补齐；返回 {store, close}
  open(id) {
    const store = this.store(id)
    const unwatch = this.watch(store.id)
    store.load()
    return {
      store,
      close: () => {
        store.setVisible(false)
        store.stopTyping()
        unwatch()
      },
    }
  }

  onEvent(id, evt) {
    const store = this.stores.get(id)
    if (store) store.onEvent(evt)
    if (evt.event === 'im.message') this.list.onMessage(evt.data || {})
    else if (evt.event === 'im.receipt' && evt.data && evt.data.user === this.userId) this.list.markRead(id, evt.data.read_seq || 0)
  }

  onUserEvent(evt) {
    if (!evt || evt.event !== 'im.notify' || !evt.data) return
    const m = evt.data
    if (this.list.find(m.conversation)) this.list.onMessage(m)
    else if (this.list.state.loaded) this.list.load()
  }

  onAck(message) {
    const store = this.stores.get(message.conversation)
    if (store) store.insert(message, true)
    this.list.onMessage(message)
  }
}

// 时间显示（Asia/Shanghai，UTC+8，无夏令时）：不依赖 Intl，小程序里也一致
export function shanghaiParts(value) {
  const t = typeof value === 'number' ? value : Date.parse(value)
  if (isNaN(t)) return null
  const d = new Date(t + 8 * 3600 * 1000)
  const pad = (n) => (n < 10 ? '0' + n : '' + n)
  return {
    y: d.getUTCFullYear(),
    M: pad(d.getUTCMonth() + 1),
    d: pad(d.getUTCDate()),
    h: pad(d.getUTCHours()),
    m: pad(d.getUTCMinutes()),
  }
}

// 今天：HH:mm；今年：MM-DD HH:mm；更早：YYYY-MM-DD HH:mm
export function formatChatTime(value, now = Date.now()) {
  const p = shanghaiParts(value)
  if (!p) return ''
  const n = shanghaiParts(now)
  if (p.y === n.y && p.M === n.M && p.d === n.d) return `${p.h}:${p.m}`
  if (p.y === n.y) return `${p.M}-${p.d} ${p.h}:${p.m}`
  return `${p.y}-${p.M}-${p.d} ${p.h}:${p.m}`
}
