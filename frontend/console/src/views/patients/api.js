import { http } from '@/api'

export const patientsApi = {
  search: (q) => http.get('/care/patients', { query: { q } }),
  get: (id) => http.get(`/care/patients/${encodeURIComponent(id)}`, { silent: ['care.relationship_not_found'] }),
}
