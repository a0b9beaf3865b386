// The console's adapter for the shared realtime client (frontend/shared/realtime-client.js):
// browser WebSocket on the page's origin, bearer token in the auth frame, the console's
// status names in a reactive `realtimeState`, and 4010 -> token cleared + onSessionEnded.
//
//   realtime.connect() / disconnect()
//   realtime.subscribe(topic, handler) / unsubscribe(topic, handler)   handler(eventFrame)
//   realtime.request(frame) -> reply frame (data in .data)
//   realtime.onResync(fn), realtime.onEvent(fn), realtime.onUnsubscribed(fn)
//   realtime.onSessionEnded = (code) => ...   (set by main.js)
//
// Status (`realtimeState.status`): idle | connecting | authenticating | connected | reconnecting | ended
import { reactive } from 'vue'
import { getToken, clearToken } from '@/utils/token'
import { RealtimeClient, RealtimeError, CLOSE_CODES, backoffDelay, browserTransport } from '../../shared/realtime-client.js'

export { RealtimeError, CLOSE_CODES, backoffDelay }
export const CLOSE_SESSION_ENDED = CLOSE_CODES.SESSION_ENDED

export const STATUS_LABELS = {
  idle: '未连接',
  connecting: '连接中',
  authenticating: '连接中',
  connected: '已连接',
  reconnecting: '重连中',
  ended: '已断开',
}

const CONSOLE_STATUS = { open: 'connected', closed: 'idle' }

export const realtimeState = reactive({
  status: 'idle',
  user: null,
  heartbeat: null,
  lastCloseCode: null,
  retryInMs: null,
})

export function wsUrl(path = '/ws/') {
  const proto = window.location.protocol === 'https:' ? 'wss:' : 'ws:'
  return `${proto}//${window.location.host}${path}`
}

export const realtime = new RealtimeClient({
  transport: browserTransport,
  getUrl: () => wsUrl(),
  getToken,
  watchNetwork(onChange) {
    window.addEventListener('offline', () => onChange(false))
    window.addEventListener('online', () => onChange(true))
  },
  onSessionEnded(code) {
    clearToken()
    if (realtime.onSessionEnded) realtime.onSessionEnded(code)
  },
})
realtime.onSessionEnded = null

realtime.onState((s) => {
  realtimeState.status = CONSOLE_STATUS[s.status] || s.status
  realtimeState.user = s.user
  realtimeState.heartbeat = s.heartbeat
  realtimeState.lastCloseCode = s.lastCloseCode
  realtimeState.retryInMs = s.retryInMs
})

export default realtime
