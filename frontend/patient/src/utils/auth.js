// 登录凭证（token）存取与会话结束处理
const TOKEN_KEY = 'ih_token'

export const LOGIN_PAGE = '/pages/login/login'
export const HOME_PAGE = '/pages/index/index'

export function getToken() {
  try {
    return uni.getStorageSync(TOKEN_KEY) || ''
  } catch (e) {
    return ''
  }
}

export function setToken(token) {
  uni.setStorageSync(TOKEN_KEY, token)
}

export function clearToken() {
  try {
    uni.removeStorageSync(TOKEN_KEY)
  } catch (e) {
    /* ignore */
  }
}

function currentRoute() {
  const pages = getCurrentPages()
  const page = pages[pages.length - 1]
  return page ? '/' + page.route : ''
}

let redirecting = false

// 会话已结束（401 auth.unauthenticated、WebSocket 4010、退出登录）：
// 清除 token，通知实时连接断开，回到登录页
export function endSession(message) {
  clearToken()
  uni.$emit('auth:session-ended')
  if (currentRoute() === LOGIN_PAGE || redirecting) {
    if (message) uni.showToast({ title: message, icon: 'none', duration: 2500 })
    return
  }
  redirecting = true
  uni.reLaunch({
    url: LOGIN_PAGE,
    complete() {
      redirecting = false
      if (message) {
        setTimeout(() => uni.showToast({ title: message, icon: 'none', duration: 2500 }), 50)
      }
    },
  })
}
