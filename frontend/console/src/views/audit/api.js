// The audit log API of the console's 审计日志 page: search, label tables, verify, file export.
import { ElMessage } from 'element-plus'
import { http, API_BASE, ApiError } from '@/api/http'
import { getToken } from '@/utils/token'

export const auditApi = {
  labels: () => http.get('/audit/labels'),
  listEvents: (query, options = {}) => http.get('/audit/events', { query, ...options }),
  verify: () => http.post('/audit/verify', {}),
}

function filenameOf(res, fallback) {
  const cd = res.headers.get('Content-Disposition') || ''
  const star = /filename\*=UTF-8''([^;]+)/i.exec(cd)
  if (star) {
    try {
      return decodeURIComponent(star[1])
    } catch {
      /* fall through */
    }
  }
  const plain = /filename="([^"]+)"/i.exec(cd)
  return plain ? plain[1] : fallback
}

/**
 * Download the export of `query` as `format` (csv | xlsx): the file goes through a blob
 * (the bearer token cannot ride on a plain link). Resolves with {filename, rows};
 * rejects with ApiError (message already shown).
 */
export async function downloadExport(format, query) {
  const params = new URLSearchParams({ format })
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== undefined && v !== null && v !== '') params.append(k, String(v))
  }
  let res
  try {
    res = await fetch(`${API_BASE}/audit/events/export?${params}`, {
      headers: { Authorization: `Bearer ${getToken()}` },
      credentials: 'same-origin',
    })
  } catch {
    const err = new ApiError(0, 'network_error', '网络连接失败，请检查网络后重试', {})
    ElMessage.error(err.message)
    throw err
  }
  if (!res.ok) {
    let data = null
    try {
      data = await res.json()
    } catch {
      data = null
    }
    const err =
      data && data.code
        ? new ApiError(res.status, data.code, data.message, data.detail)
        : new ApiError(res.status, `http_${res.status}`, `导出失败（${res.status}），请稍后重试`, {})
    ElMessage.error({ message: err.message, grouping: true, duration: 6000 })
    throw err
  }
  const blob = await res.blob()
  const filename = filenameOf(res, `审计日志.${format}`)
  const url = URL.createObjectURL(blob)
  const a = document.createElement('a')
  a.href = url
  a.download = filename
  document.body.appendChild(a)
  a.click()
  a.remove()
  setTimeout(() => URL.revokeObjectURL(url), 10000)
  return { filename, rows: Number(res.headers.get('X-Audit-Rows') || 0) }
}
