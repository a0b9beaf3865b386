// 接口地址配置
// H5：与页面同源，使用相对路径 /api/v1
// 小程序：使用绝对地址，来自构建时环境变量 VITE_API_BASE
export const DEFAULT_MP_API_BASE = 'https://ih.example-hospital.cn'

function trimSlash(s) {
  return String(s || '').replace(/\/+$/, '')
}

// 服务器根地址（H5 为空字符串，即同源）
export function getOrigin() {
  // #ifdef H5
  return ''
  // #endif
  // #ifndef H5
  // eslint-disable-next-line no-unreachable
  return trimSlash(import.meta.env.VITE_API_BASE || DEFAULT_MP_API_BASE)
  // #endif
}

export function getApiBase() {
  return getOrigin() + '/api/v1'
}

// WebSocket 地址：H5 由当前页面地址推导，小程序由 API 根地址推导
export function getWsUrl() {
  // #ifdef H5
  const proto = window.location.protocol === 'https:' ? 'wss:' : 'ws:'
  return `${proto}//${window.location.host}/ws/`
  // #endif
  // #ifndef H5
  // eslint-disable-next-line no-unreachable
  return getOrigin().replace(/^https:/i, 'wss:').replace(/^http:/i, 'ws:') + '/ws/'
  // #endif
}

// 当前是否为小程序（小程序没有浏览器 Origin，WebSocket 需用一次性票据认证）
export function isMiniProgram() {
  // #ifdef MP
  return true
  // #endif
  // #ifndef MP
  // eslint-disable-next-line no-unreachable
  return false
  // #endif
}
