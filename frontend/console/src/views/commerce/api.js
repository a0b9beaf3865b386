// Endpoints of /api/v1/commerce/ used by the console (staff side).
import { http } from '@/api'

const id = (x) => encodeURIComponent(x)

export const commerceApi = {
  orders: (query) => http.get('/commerce/staff/orders', { query }),
  order: (orderNo) => http.get(`/commerce/orders/${id(orderNo)}`),
  refunds: (query) => http.get('/commerce/staff/refunds', { query }),
  approve: (refundNo) => http.post(`/commerce/refunds/${id(refundNo)}/approve`, {}),
  reject: (refundNo, reason) => http.post(`/commerce/refunds/${id(refundNo)}/reject`, { reason }),
  retry: (refundNo) => http.post(`/commerce/refunds/${id(refundNo)}/retry`, {}),
  reports: (query) => http.get('/commerce/reconciliation', { query }),
  report: (reportId) => http.get(`/commerce/reconciliation/${id(reportId)}`),
  reconcile: (provider, day) => http.post('/commerce/reconciliation', { provider, day }),
}
