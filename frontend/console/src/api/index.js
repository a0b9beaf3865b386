// Endpoint functions (paths relative to /api/v1). Add a section per module.
import { http } from './http'

export { ApiError, onUnauthenticated, request, http } from './http'

export const authApi = {
  staffLogin: (payload, options) => http.post('/auth/staff/login', payload, { auth: false, ...options }),
  changePassword: (payload, options) => http.post('/auth/password/change', payload, options),
  totpEnrolment: (enrolToken, options) => http.post('/auth/totp/enrolment', { enrol_token: enrolToken }, { auth: false, ...options }),
  totpConfirm: (enrolToken, code, options) =>
    http.post('/auth/totp/confirm', { enrol_token: enrolToken, code }, { auth: false, ...options }),
  logout: (options) => http.post('/auth/logout', {}, options),
  logoutAll: (options) => http.post('/auth/logout/all', {}, options),
  realtimeTicket: () => http.post('/realtime/ticket', {}),
}

export const accountsApi = {
  me: (options) => http.get('/accounts/me', options),
}

export const adminApi = {
  listUsers: (query) => http.get('/admin/users', { query }),
  createUser: (payload) => http.post('/admin/users', payload),
  disableUser: (id) => http.post(`/admin/users/${encodeURIComponent(id)}/disable`, {}),
  enableUser: (id) => http.post(`/admin/users/${encodeURIComponent(id)}/enable`, {}),
  changeRole: (id, role) => http.post(`/admin/users/${encodeURIComponent(id)}/role`, { role }),
  unlockUser: (id) => http.post(`/admin/users/${encodeURIComponent(id)}/unlock`, {}),
  resetTotp: (id) => http.post(`/admin/users/${encodeURIComponent(id)}/totp/reset`, {}),
  revokeSessions: (id) => http.post(`/admin/users/${encodeURIComponent(id)}/sessions/revoke`, {}),
}

export const auditApi = {
  listEvents: (query) => http.get('/audit/events', { query }),
  verify: () => http.post('/audit/verify', {}),
}
