// The one HTTP client: fetch + bearer token + the contract's error shape {code, message, detail}.
import { ElMessage } from 'element-plus'
import { getToken, clearToken } from '@/utils/token'

export const API_BASE = '/api/v1'

export class ApiError extends Error {
  constructor(status, code, message, detail) {
    super(message)
    this.name = 'ApiError'
    this.status = status
    this.code = code
    this.detail = detail || {}
  }
}

let unauthenticatedHandler = null

/** Called (once per burst) when the server answers 401 auth.unauthenticated. */
export function onUnauthenticated(fn) {
  unauthenticatedHandler = fn
}

let lastUnauthAt = 0
function handleUnauthenticated() {
  clearToken()
  const now = Date.now()
  if (now - lastUnauthAt < 1000) return
  lastUnauthAt = now
  if (unauthenticatedHandler) unauthenticatedHandler()
}

function buildUrl(path, query) {
  let url = API_BASE + path
  if (query) {
    const params = new URLSearchParams()
    for (const [k, v] of Object.entries(query)) {
      if (v === undefined || v === null || v === '') continue
      params.append(k, String(v))
    }
    const qs = params.toString()
    if (qs) url += (url.includes('?') ? '&' : '?') + qs
  }
  return url
}

/**
 * request(method, path, options)
 *   options.query   object -> query string (empty values dropped)
 *   options.body    object -> JSON body
 *   options.auth    false to send no Authorization header
 *   options.silent  true, or an array of error codes, not to show with ElMessage
 * Resolves with the parsed JSON (null for 204); rejects with ApiError.
 */
export async function request(method, path, options = {}) {
  const { query, body, auth = true, silent = false } = options
  const headers = { Accept: 'application/json' }
  if (body !== undefined) headers['Content-Type'] = 'application/json'
  const token = getToken()
  if (auth && token) headers.Authorization = `Bearer ${token}`

  let res
  try {
    res = await fetch(buildUrl(path, query), {
      method,
      headers,
      body: body !== undefined ? JSON.stringify(body) : undefined,
      credentials: 'same-origin',
    })
  } catch (e) {
    const err = new ApiError(0, 'network_error', '网络连接失败，请检查网络后重试', {})
    if (silent !== true) ElMessage.error(err.message)
    throw err
  }

  if (res.status === 204) return null

  let data = null
  const text = await res.text()
  if (text) {
    try {
      data = JSON.parse(text)
    } catch {
      data = null
    }
  }

  if (res.ok) return data

  const err =
    data && typeof data === 'object' && data.code
      ? new ApiError(res.status, data.code, data.message || `请求失败（${res.status}）`, data.detail)
      : new ApiError(res.status, `http_${res.status}`, res.status >= 500 ? `服务暂时不可用（${res.status}），请稍后重试` : `请求失败（${res.status}）`, {})

  const quiet = silent === true || (Array.isArray(silent) && silent.includes(err.code))
  if (!quiet) ElMessage.error({ message: err.message, grouping: true })
  if (res.status === 401 && err.code === 'auth.unauthenticated' && auth) handleUnauthenticated()
  throw err
}

export const http = {
  get: (path, options) => request('GET', path, options),
  post: (path, body, options = {}) => request('POST', path, { ...options, body: body === undefined ? {} : body }),
  put: (path, body, options = {}) => request('PUT', path, { ...options, body }),
  patch: (path, body, options = {}) => request('PATCH', path, { ...options, body }),
  delete: (path, options) => request('DELETE', path, options),
}
