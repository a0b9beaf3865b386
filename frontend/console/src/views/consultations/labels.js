// Fixed lists and display helpers of the doctor workstation (Chinese only; the server's
// *_label fields are used wherever it sends one).
import { formatTime } from '@/utils/time'
import { yuan } from '@/utils/money'

// apps/consultations/models.py Visit.TerminateReason (R2: ends the visit with a full refund).
export const TERMINATE_REASONS = [
  { value: 'first_visit', label: '初诊患者，不适合在线复诊' },
  { value: 'condition_changed', label: '病情变化，需线下就诊' },
  { value: 'needs_exam', label: '需要线下检查' },
  { value: 'emergency', label: '病情紧急，请立即线下急诊' },
  { value: 'other', label: '其他原因' },
]

// Invitation.Role
export const INVITE_ROLES = [
  { value: 'family', label: '家属' },
  { value: 'interpreter', label: '翻译' },
  { value: 'doctor', label: '会诊医生' },
]

export const STATUS_TAG = {
  pending_payment: 'info',
  waiting: 'warning',
  accepted: 'primary',
  in_progress: 'success',
  ended: 'info',
  cancelled: 'info',
  terminated: 'danger',
}

export const BOARD_COLUMNS = [
  { key: 'waiting', title: '候诊', empty: '暂无候诊患者：患者预约并支付后会出现在这里' },
  { key: 'in_visit', title: '问诊中', empty: '暂无进行中的问诊：接诊后点“叫号”请患者进入' },
  { key: 'done', title: '已完成', empty: '今天还没有完成的问诊' },
]

/** 张** · 女 · 45岁 */
export function patientLine(p) {
  if (!p) return '—'
  return [p.name, p.sex_label, p.age !== null && p.age !== undefined ? `${p.age}岁` : ''].filter(Boolean).join(' · ')
}

/** When the visit is for: its slot (HH:mm–HH:mm), or "科室排队". */
export function slotText(v) {
  if (v?.slot) return `${formatTime(v.slot.starts_at, 'HH:mm')}–${formatTime(v.slot.ends_at, 'HH:mm')}`
  return '科室排队'
}

export function priceText(v) {
  return v?.price_fen !== null && v?.price_fen !== undefined ? yuan(v.price_fen) : '—'
}

/** Seconds -> "mm:ss" (or "h:mm:ss"); negative counts as zero. */
export function clock(seconds) {
  const s = Math.max(0, Math.floor(Number(seconds) || 0))
  const h = Math.floor(s / 3600)
  const m = Math.floor((s % 3600) / 60)
  const ss = String(s % 60).padStart(2, '0')
  return h ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${String(m).padStart(2, '0')}:${ss}`
}

/** Minutes as Chinese text: 90 -> "1小时30分钟". */
export function minutesText(minutes) {
  const m = Math.max(0, Math.round(Number(minutes) || 0))
  if (m < 60) return `${m}分钟`
  return m % 60 ? `${Math.floor(m / 60)}小时${m % 60}分钟` : `${m / 60}小时`
}

export function can(v, action) {
  return !!v && Array.isArray(v.allowed_actions) && v.allowed_actions.includes(action)
}

export { formatTime, yuan }

/** A calendar date "2026-03-05" -> "2026年3月5日" (no time zone shift). */
export function dateText(value) {
  const m = /^(\d{4})-(\d{2})-(\d{2})/.exec(String(value || ''))
  return m ? `${m[1]}年${Number(m[2])}月${Number(m[3])}日` : '—'
}
