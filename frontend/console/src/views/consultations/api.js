// Endpoints of /api/v1/consultations/ used by the doctor workstation (docs/consultations-api.md),
// kept beside the views that use them.
import { http } from '@/api'

const id = (x) => encodeURIComponent(x)

// Refusals shown at the place they concern (a dialog's field), not as a passing toast.
export const quiet = { silent: true }

export const consultApi = {
  doctors: (query) => http.get('/consultations/doctors', { query, silent: true }),
  workbench: (options) => http.get('/consultations/workbench', options),
  setOnline: (online) => http.post('/consultations/me/online', { online }, quiet),
  visits: (query) => http.get('/consultations/visits', { query }),
  visit: (vid, options) => http.get(`/consultations/visits/${id(vid)}`, options),
  take: (vid) => http.post(`/consultations/visits/${id(vid)}/take`, {}),
  stepUp: (vid, payload) => http.post(`/consultations/visits/${id(vid)}/step-up`, payload, quiet),
  accept: (vid) => http.post(`/consultations/visits/${id(vid)}/accept`, { confirm_followup: true }, quiet),
  terminate: (vid, reason, note) => http.post(`/consultations/visits/${id(vid)}/terminate`, { reason, note }, quiet),
  call: (vid) => http.post(`/consultations/visits/${id(vid)}/call`, {}),
  end: (vid) => http.post(`/consultations/visits/${id(vid)}/end`, {}),
  extend: (vid) => http.post(`/consultations/visits/${id(vid)}/extend`, {}),
  record: (vid, options) => http.get(`/consultations/visits/${id(vid)}/record`, options),
  saveRecord: (vid, payload) => http.put(`/consultations/visits/${id(vid)}/record`, payload, quiet),
  signRecord: (vid, pin) => http.post(`/consultations/visits/${id(vid)}/record/sign`, { pin }, quiet),
  priorRecords: (patientId) => http.get(`/consultations/patients/${id(patientId)}/prior-records`, quiet),
  reviewPrior: (recordId, decision, note) => http.post(`/consultations/prior-records/${id(recordId)}/review`, { decision, note }, quiet),
  invite: (vid, role) => http.post(`/consultations/visits/${id(vid)}/invitations`, { role }, quiet),
  participants: (vid) => http.get(`/consultations/visits/${id(vid)}/participants`, quiet),
  // The doctor's schedule (我的排班)
  mySlots: (query) => http.get('/consultations/me/slots', { query }),
  createSlot: (payload) => http.post('/consultations/me/slots', payload, quiet),
  createSlotsBatch: (payload) => http.post('/consultations/me/slots/batch', payload, quiet),
  setSlotCapacity: (slotId, capacity) => http.patch(`/consultations/slots/${id(slotId)}`, { capacity }, quiet),
  closeSlot: (slotId) => http.post(`/consultations/slots/${id(slotId)}/close`, {}, quiet),
  removeParticipant: (vid, userId) => http.delete(`/consultations/visits/${id(vid)}/participants/${id(userId)}`),
}
