// 请求封装：统一加 Authorization 头、解析错误 {code, message, detail}、提示 message、401 回登录
import { getApiBase } from './config.js'
import { getToken, endSession } from './auth.js'

export class ApiError extends Error {
  constructor(status, code, message, detail) {
    super(message)
    this.name = 'ApiError'
    this.status = status
    this.code = code
    this.detail = detail || {}
  }
}

const NETWORK_MESSAGE = '网络连接失败，请检查网络后重试'
const SERVER_MESSAGE = '服务暂时不可用，请稍后重试'

function toast(message) {
  if (message) uni.showToast({ title: message, icon: 'none', duration: 2500 })
}

function parseBody(data) {
  if (typeof data === 'string') {
    if (!data) return null
    try {
      return JSON.parse(data)
    } catch (e) {
      return data
    }
  }
  return data === undefined ? null : data
}

/**
 * @param {object} opts
 * @param {string} opts.url     相对 /api/v1 的路径，如 '/accounts/me'
 * @param {string} [opts.method='GET']
 * @param {object} [opts.data]
 * @param {boolean} [opts.toast=true]  出错时是否 showToast 显示服务器的 message
 * @returns {Promise<any>} 成功时为响应 JSON（204 为 null）；失败时 reject ApiError
 */
export function request({ url, method = 'GET', data, toast: showToast = true } = {}) {
  const header = { 'Content-Type': 'application/json' }
  const token = getToken()
  if (token) header.Authorization = `Bearer ${token}`

  return new Promise((resolve, reject) => {
    function handle(status, rawBody) {
      const body = parseBody(rawBody)
      if (status >= 200 && status < 300) {
        resolve(status === 204 ? null : body)
        return
      }
      const isErrShape = body && typeof body === 'object' && body.code
      const code = isErrShape ? body.code : `http_${status}`
      const message = (isErrShape && body.message) || (status >= 500 ? SERVER_MESSAGE : `请求失败（${status}）`)
      const err = new ApiError(status, code, message, isErrShape ? body.detail : null)
      if (status === 401 && code === 'auth.unauthenticated') {
        endSession(message)
      } else if (showToast) {
        toast(message)
      }
      reject(err)
    }

    uni.request({
      url: getApiBase() + url,
      method,
      // POST 无参数时也发送 {}，避免后端解析空请求体出错
      data: data === undefined ? (method === 'POST' ? {} : undefined) : data,
      header,
      dataType: 'text', // 自己解析，204 空响应也不会报错
      timeout: 15000,
      success(res) {
        handle(res.statusCode, res.data)
      },
      fail(e) {
        // 支付宝小程序对非 2xx 状态码走 fail（error 19），但仍带有状态码和响应体
        const status = (e && (e.statusCode || e.status)) || 0
        if (status) {
          handle(status, e.data)
          return
        }
        const err = new ApiError(0, 'network_error', NETWORK_MESSAGE, { errMsg: e && e.errMsg })
        if (showToast) toast(NETWORK_MESSAGE)
        reject(err)
      },
    })
  })
}

export const get = (url, opts = {}) => request({ ...opts, url, method: 'GET' })
export const post = (url, data, opts = {}) => request({ ...opts, url, method: 'POST', data })
export const del = (url, opts = {}) => request({ ...opts, url, method: 'DELETE' })
