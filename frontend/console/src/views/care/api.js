// Endpoints of /api/v1/care/ used by the console (kept beside the view that uses them).
import { http } from '@/api'

export const careApi = {
  conversations: (query) => http.get('/im/conversations', { query }),
  candidates: (conversationId) => http.get(`/care/conversations/${encodeURIComponent(conversationId)}/patients`),
  take: (payload) => http.post('/care/relationships', payload),
  relationships: (query) => http.get('/care/relationships', { query }),
  end: (id, note) => http.post(`/care/relationships/${encodeURIComponent(id)}/end`, { note }),
}
