// Endpoints of /api/v1/psych/ used by the console (kept beside the views that use them).
import { http, ApiError } from '@/api'
import { getToken } from '@/utils/token'

export const psychApi = {
  scales: () => http.get('/psych/scales'),
  patients: (query) => http.get('/psych/patients', { query }),
  assignments: (query) => http.get('/psych/assignments', { query }),
  assign: (payload) => http.post('/psych/assignments', payload),
  cancel: (id) => http.post(`/psych/assignments/${encodeURIComponent(id)}/cancel`, {}),
  report: (id, options) => http.get(`/psych/results/${encodeURIComponent(id)}`, options),
  sign: (id, note) => http.post(`/psych/results/${encodeURIComponent(id)}/sign`, { note }),
  alerts: (query) => http.get('/psych/alerts', { query }),
  alert: (id) => http.get(`/psych/alerts/${encodeURIComponent(id)}`),
  acknowledge: (id, note) => http.post(`/psych/alerts/${encodeURIComponent(id)}/acknowledge`, { note }),
  close: (id, note) => http.post(`/psych/alerts/${encodeURIComponent(id)}/close`, { note }),
  duty: (query) => http.get('/psych/duty', { query }),
  addDuty: (payload) => http.post('/psych/duty', payload),
}

/** The print-ready HTML of a report (the API answers text/html, so plain fetch). */
export async function fetchPrintHtml(resultId) {
  const res = await fetch(`/api/v1/psych/results/${encodeURIComponent(resultId)}/print`, {
    headers: { Authorization: `Bearer ${getToken()}`, Accept: 'text/html' },
  })
  if (!res.ok) throw new ApiError(res.status, `http_${res.status}`, '报告获取失败', {})
  return res.text()
}
