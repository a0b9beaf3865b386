// 实时页面：本人频道（user:<id>）上的事件、断线补齐，以及“登录检查 + 订阅 + 卸载退订 + 下拉刷新”的页面骨架。
import { onShow, onUnload, onPullDownRefresh } from '@dcloudio/uni-app'
import { get } from './request.js'
import { realtime } from './realtime.js'
import { getToken, LOGIN_PAGE } from './auth.js'

// 当前账号（取 id 订阅 user:<id> 频道）；页面之间共用一次请求
let mePromise = null
export function currentUser() {
  if (!mePromise) {
    mePromise = get('/accounts/me', { toast: false }).catch((e) => {
      mePromise = null
      throw e
    })
  }
  return mePromise
}
uni.$on('auth:session-ended', () => {
  mePromise = null
})

/**
 * 监听本人频道（user:<id>，同一个实时连接）上名为 eventName 的事件；返回取消监听的函数。
 * onResync：断线重连后或服务器要求补齐时调用（期间的事件可能丢失，页面应重新拉取）。
 */
export function watchEvent(eventName, onEvent, onResync) {
  let topic = ''
  let stopped = false
  const handler = (evt) => {
    if (evt && evt.event === eventName && evt.data) onEvent(evt.data)
  }
  const offs = []
  if (onResync) {
    let wasOpen = realtime.status === 'open'
    offs.push(
      realtime.onStatus((s) => {
        if (s === 'open' && !wasOpen) onResync()
        wasOpen = s === 'open'
      }),
    )
    offs.push(realtime.onResync(() => onResync()))
  }
  realtime.connect()
  currentUser()
    .then((me) => {
      if (stopped || !me) return
      topic = `user:${me.id}`
      realtime.subscribe(topic, handler).catch(() => {})
    })
    .catch(() => {})
  return () => {
    stopped = true
    offs.forEach((off) => off())
    if (topic) realtime.unsubscribe(topic, handler).catch(() => {})
  }
}


/**
 * 一个显示本人实时数据的页面：每次显示时检查登录并 load()，订阅 event（收到时 onEvent(data)，默认重新 load），
 * 断线重连后 load() 补齐；页面卸载时退订；下拉刷新即 load()。beforeLoad：每次显示、load 之前调用。
 */
export function useLivePage({ event, load, onEvent, beforeLoad }) {
  let unwatch = null
  onShow(() => {
    if (!getToken()) {
      uni.reLaunch({ url: LOGIN_PAGE })
      return
    }
    if (beforeLoad) beforeLoad()
    load()
    if (!unwatch) unwatch = watchEvent(event, onEvent || (() => load()), load)
  })
  onUnload(() => {
    if (unwatch) unwatch()
    unwatch = null
  })
  onPullDownRefresh(() => Promise.resolve(load()).finally(() => uni.stopPullDownRefresh()))
}
