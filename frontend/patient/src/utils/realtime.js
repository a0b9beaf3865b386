// 患者端实时连接：共用客户端 frontend/shared/realtime-client.js 的适配层
//
// - H5 用浏览器 WebSocket + token；小程序用 uni.connectSocket，先 POST /realtime/ticket 换一次性票据
// - 关闭码 4010（会话结束）不重连，回到登录页；4001 时检查登录状态
// - App.vue 的 onShow / onHide 调用 realtime.foreground() / background()
//
// 用法：
//   import { realtime } from '@/utils/realtime.js'
//   realtime.connect()
//   const offStatus = realtime.onStatus((s) => { ... })  // s: 'idle'|'connecting'|'authenticating'|'open'|'closed'
//   await realtime.subscribe('user:12', (evt) => { ... })  // evt: {topic, event, data}；unsubscribe(topic, 同一函数)
//   const off = realtime.on('user:12', (evt) => { ... })   // 只监听，不持有订阅
//   const data = (await realtime.request({ type: 'im.sync', conversation: 3, after_seq: 0 })).data
//   const offResync = realtime.onResync(() => { ... })     // 服务器发来 {"type":"resync"}：从各自最后的 seq 补齐
import { getWsUrl, isMiniProgram } from './config.js'
import { getToken, endSession } from './auth.js'
import { get, post } from './request.js'
import { RealtimeClient as SharedClient, RealtimeError, CLOSE_CODES, backoffDelay, browserTransport } from '../../../shared/realtime-client.js'

export { RealtimeError, CLOSE_CODES, backoffDelay }

export const STATUS = Object.freeze({
  IDLE: 'idle',
  CONNECTING: 'connecting', // 建立连接中或等待重连
  AUTHENTICATING: 'authenticating', // 已连上，等待 auth.ok
  OPEN: 'open', // 已收到 auth.ok
  CLOSED: 'closed', // 主动断开或会话结束，不再重连
})

// 共用客户端的状态名 -> 患者端的状态名
const PATIENT_STATUS = { reconnecting: STATUS.CONNECTING, ended: STATUS.CLOSED }
const patientStatus = (s) => PATIENT_STATUS[s] || s

function frameText(res) {
  // 支付宝 SocketTask 可能把消息包在 res.data.data 里
  let d = res && res.data
  if (d && typeof d === 'object' && typeof d.data === 'string') d = d.data
  return typeof d === 'string' ? d : ''
}

// 小程序：uni.connectSocket 的 SocketTask
export const uniTransport = {
  open(url, h) {
    const opts = { url, complete() {} }
    // #ifdef MP-ALIPAY
    opts.multiple = true // 支付宝需要 multiple 才返回 SocketTask
    // #endif
    const task = uni.connectSocket(opts)
    if (!task) return null
    task.onOpen(() => h.onOpen())
    task.onMessage((res) => h.onMessage(frameText(res)))
    task.onClose((res) => h.onClose(res && res.code, res && res.reason))
    task.onError(() => h.onError()) // 部分平台出错后不会再触发 onClose
    return {
      send(text) {
        task.send({ data: text, fail() {} })
        return true
      },
      close(code, reason) {
        task.close({ code: code >= 3000 || code === 1000 ? code : 1000, reason, fail() {} })
      },
    }
  },
}

async function credentials(token) {
  if (!isMiniProgram()) return { token }
  // 小程序没有浏览器 Origin：用一次性票据认证
  const r = await post('/realtime/ticket', {}, { toast: false })
  return { ticket: r && r.ticket }
}

function watchNetwork(onChange) {
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

export class RealtimeClient extends SharedClient {
  constructor(options = {}) {
    let transport = uniTransport
    // #ifdef H5
    transport = browserTransport
    // #endif
    super({
      transport,
      getUrl: getWsUrl,
      getToken,
      credentials,
      watchNetwork,
      onSessionEnded: () => endSession('登录状态已失效，请重新登录'),
      // 认证失败：检查登录状态，若 token 已失效，请求封装会跳转登录页并触发 disconnect
      onAuthFailed: () => get('/accounts/me', { toast: false }).catch(() => {}),
      ...options,
    })
    // 401 或退出登录时由 auth.js 发出
    uni.$on('auth:session-ended', () => {
      if (this.isActive()) this.disconnect()
    })
  }

  get status() {
    return patientStatus(this.state.status)
  }

  onStatus(fn) {
    return super.onStatus((s) => fn(patientStatus(s)))
  }
}

// 应用内共用的一个实例
export const realtime = new RealtimeClient()

export default realtime
