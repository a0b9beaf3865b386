// Bearer token storage (sessionStorage: a tab's session ends when the tab closes).
const KEY = 'ih_console_token'

export function getToken() {
  try {
    return sessionStorage.getItem(KEY) || ''
  } catch {
    return ''
  }
}

export function setToken(token) {
  sessionStorage.setItem(KEY, token)
}

export function clearToken() {
  try {
    sessionStorage.removeItem(KEY)
  } catch {
    /* ignore */
  }
}
