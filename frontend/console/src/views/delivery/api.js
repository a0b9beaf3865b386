// Endpoints of /api/v1/delivery/ used by the console (staff side).
import { http } from '@/api'

const id = (x) => encodeURIComponent(x)

export const deliveryApi = {
  search: (query) => http.get('/delivery/shipments', { query }),
  get: (sid) => http.get(`/delivery/shipments/${id(sid)}`),
  book: (sid, courier) => http.post(`/delivery/shipments/${id(sid)}/book`, { courier }),
  ready: (sid) => http.post(`/delivery/shipments/${id(sid)}/ready`, {}),
  verify: (sid, code) => http.post(`/delivery/shipments/${id(sid)}/pickup/verify`, { code }, { silent: true }),
  cancel: (sid, reason) => http.post(`/delivery/shipments/${id(sid)}/cancel`, { reason }),
  exception: (sid, reason) => http.post(`/delivery/shipments/${id(sid)}/exception`, { reason }),
  track: (sid) => http.post(`/delivery/shipments/${id(sid)}/track`, {}),
  sandboxStep: (sid, action) => http.post(`/delivery/sandbox/shipments/${id(sid)}/step`, { action }),
}
