// Chat cards: one template per card_type, shared by the patient app and the console.
// A template names its tag, title, the rows people read (Chinese labels, formatted values)
// and what tapping it opens for each audience. Fields without a row in the template are
// never shown, so no id, key or machine value reaches the screen. A card type without a
// template shows its title and summary only.
//
//   renderCard(card, audience, now?) -> { type, tag, title, rows: [{label, value}], action }
//   audience: 'patient' | 'staff'
//   action: { label, target } | null; the patient app navigates to target.url (a page
//   path), the console to target.route (a vue-router location).

import { formatFriendly } from './time.js'

const names = (list) =>
  (Array.isArray(list) ? list : [])
    .map((x) => (x && typeof x === 'object' ? x.name || x.title || '' : String(x || '')))
    .filter(Boolean)
    .join('、')

export const CARD_TEMPLATES = {
  scale_assignment: {
    tag: '心理测评',
    title: () => '请完成心理量表',
    rows: [
      { label: '就诊人', value: (d) => d.patient_name },
      { label: '量表', value: (d) => names(d.scales) },
      { label: '截止时间', value: (d, now) => (d.due_at ? `${formatFriendly(d.due_at, now)}前` : '') },
    ],
    action: {
      patient: (d) => {
        const ids = Array.isArray(d.assignment_ids) ? d.assignment_ids : []
        return {
          label: ids.length === 1 ? '去填写' : '查看并填写',
          target: { url: ids.length === 1 ? `/pages/psych/fill?id=${ids[0]}` : '/pages/psych/list' },
        }
      },
      staff: (d) =>
        d.patient_id ? { label: '查看测评', target: { route: { name: 'psych', query: { patient: String(d.patient_id) } } } } : null,
    },
  },
  // consultations (R2): a doctor terminated the visit and advises going to the hospital; full refund.
  consult_advice: {
    tag: '就诊建议',
    title: (d) => d.title || '建议线下就诊',
    rows: [
      { label: '原因', value: (d) => d.reason_label },
      { label: '医生建议', value: (d) => d.advice },
      { label: '费用', value: (d) => d.refund },
    ],
    action: {
      patient: (d) => (d.visit_id ? { label: '查看问诊', target: { url: `/pages/consult/visit?id=${d.visit_id}` } } : null),
      staff: () => null,
    },
  },
  notice: {
    tag: '通知',
    title: (d) => d.title || '通知',
    rows: [{ label: '', value: (d) => d.summary || d.text }],
  },
}

export function cardTag(type) {
  return (CARD_TEMPLATES[type] && CARD_TEMPLATES[type].tag) || '消息卡片'
}

function clean(value) {
  if (value === null || value === undefined) return ''
  if (typeof value === 'object') return ''
  return String(value)
}

export function renderCard(card, audience, now = new Date()) {
  const type = (card && card.card_type) || 'unknown'
  const data = (card && card.data) || {}
  const tpl = CARD_TEMPLATES[type]
  if (!tpl) {
    const title = clean(data.title) || '消息卡片'
    const summary = clean(data.summary)
    return { type, tag: '消息卡片', title, rows: summary ? [{ label: '', value: summary }] : [], action: null }
  }
  const rows = tpl.rows
    .map((r) => ({ label: r.label, value: clean(r.value(data, now)) }))
    .filter((r) => r.value)
  const make = tpl.action && tpl.action[audience]
  const action = make ? make(data) : null
  return { type, tag: tpl.tag, title: clean(tpl.title(data)) || tpl.tag, rows, action }
}

export function cardPreview(card) {
  const r = renderCard(card, 'patient')
  return `[${r.tag}] ${r.title}`
}

