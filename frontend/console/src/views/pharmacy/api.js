// Endpoints of /api/v1/pharmacy/ used by the console (kept beside the views that use them).
import { http } from '@/api'

const id = (x) => encodeURIComponent(x)

// Rule refusals are shown at the field they concern (errors.js), not as a toast.
export const quietRules = { silent: true }

export const pharmacyApi = {
  drugs: (query) => http.get('/pharmacy/drugs', { query }),
  vocabularies: () => http.get('/pharmacy/vocabularies'),
  list: (query) => http.get('/pharmacy/prescriptions', { query }),
  get: (pid, options) => http.get(`/pharmacy/prescriptions/${id(pid)}`, options),
  create: (payload) => http.post('/pharmacy/prescriptions', payload, quietRules),
  update: (pid, payload) => http.put(`/pharmacy/prescriptions/${id(pid)}`, payload, quietRules),
  sign: (pid, pin) => http.post(`/pharmacy/prescriptions/${id(pid)}/sign`, { pin }, quietRules),
  submit: (pid) => http.post(`/pharmacy/prescriptions/${id(pid)}/submit`, {}, quietRules),
  revise: (pid) => http.post(`/pharmacy/prescriptions/${id(pid)}/revise`, {}),
  cancel: (pid, reason) => http.post(`/pharmacy/prescriptions/${id(pid)}/cancel`, { reason }),
  queue: (query) => http.get('/pharmacy/review-queue', { query }),
  approve: (pid, note) => http.post(`/pharmacy/prescriptions/${id(pid)}/approve`, { note }),
  reject: (pid, reason, note) => http.post(`/pharmacy/prescriptions/${id(pid)}/reject`, { reason, note }),
  allergies: (patientId) => http.get(`/pharmacy/patients/${id(patientId)}/allergies`, { silent: true }),
  certificate: () => http.get('/pharmacy/ca/certificate', { silent: true }),
  enrol: (pin) => http.post('/pharmacy/ca/enrol', { pin }, { silent: true }),
}
