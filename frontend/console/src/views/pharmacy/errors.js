// Where each refusal of the prescription rules (apps/pharmacy/errors.py) is shown in the
// writer: at the line and column it concerns, or at a form field. The message is the
// server's Chinese text; the code only decides the place.
const LINE_DRUG = ['pharmacy.duplicate_drug', 'pharmacy.controlled_drug', 'pharmacy.drug_not_online', 'pharmacy.drug_unknown', 'pharmacy.allergy_conflict']
const WHOLE_LINES = ['pharmacy.no_lines', 'pharmacy.too_many_drugs', 'pharmacy.tcm_pieces_mixed']
const FIELDS = {
  'pharmacy.diagnosis_required': 'diagnosis',
  'pharmacy.diagnosis_code_invalid': 'icd10_code',
  'pharmacy.valid_days_invalid': 'valid_days',
  'pharmacy.guardian_required': 'guardian',
  'pharmacy.guardian_id_invalid': 'guardian',
}
export const CA_CODES = [
  'pharmacy.ca_no_certificate',
  'pharmacy.ca_cert_expired',
  'pharmacy.ca_cert_revoked',
  'pharmacy.ca_pin_wrong',
  'pharmacy.ca_pin_locked',
  'pharmacy.ca_pin_format',
  'pharmacy.ca_unavailable',
]
const COLUMN_NAMES = { dose: '单次剂量', days: '天数', quantity: '数量', frequency: '频次', route: '途径', instructions: '用法说明' }
const FIELD_NAMES = {
  diagnosis: '临床诊断',
  icd10_code: 'ICD-10 编码',
  chronic_reason: '长期处方理由',
  valid_days: '有效期',
  note_to_pharmacist: '给药师的说明',
  'guardian.name': '监护人姓名',
  'guardian.relation': '监护人关系',
  'guardian.id_number': '监护人身份证号',
}

/** An empty map of inline errors: {form: {field: msg}, lines: {index: {column: msg}}, top: msg}. */
export function noErrors() {
  return { form: {}, lines: {}, top: '' }
}

function atLine(out, position, column, message) {
  const i = Number(position) - 1
  if (!Number.isInteger(i) || i < 0) {
    out.top = message
    return
  }
  out.lines[i] = { ...(out.lines[i] || {}), [column]: message }
}

/** ApiError -> the inline errors to show (the caller shows anything left in `top`). */
export function placeError(err) {
  const out = noErrors()
  const code = err?.code || ''
  const d = err?.detail || {}
  const msg = err?.message || '保存失败，请稍后重试'
  if (LINE_DRUG.includes(code)) atLine(out, d.position, 'drug', msg)
  else if (WHOLE_LINES.includes(code)) out.form.lines = msg
  else if (code === 'pharmacy.frequency_unknown') atLine(out, d.position, 'frequency', msg)
  else if (code === 'pharmacy.route_unknown') atLine(out, d.position, 'route', msg)
  else if (code === 'pharmacy.quantity_exceeds_days') atLine(out, d.position, 'quantity', msg)
  else if (code === 'pharmacy.line_invalid') atLine(out, d.position, COLUMN_NAMES[d.field] ? d.field : 'drug', msg)
  else if (code === 'pharmacy.supply_days_exceeded') {
    atLine(out, d.position, 'days', msg)
    out.form.chronic_reason = '用药超过7天须填写长期处方理由（慢性病长期处方）'
  } else if (code === 'pharmacy.chronic_days_exceeded') atLine(out, d.position, 'days', msg)
  else if (FIELDS[code]) out.form[FIELDS[code]] = msg
  else if (code === 'validation_error') {
    const fields = d.fields || (d.field ? [{ field: d.field }] : [])
    for (const f of fields) {
      const m = /^lines\.(\d+)\.(\w+)$/.exec(f.field || '')
      if (m) atLine(out, Number(m[1]) + 1, COLUMN_NAMES[m[2]] ? m[2] : 'drug', `请填写正确的${COLUMN_NAMES[m[2]] || '药品信息'}`)
      else if (FIELD_NAMES[f.field]) out.form[f.field.startsWith('guardian') ? 'guardian' : f.field] = d.field ? msg : `请填写正确的${FIELD_NAMES[f.field]}`
      else out.top = msg
    }
    if (!fields.length) out.top = msg
  } else out.top = msg
  return out
}

export const REJECT_PRESETS = [
  '诊断与用药不符',
  '用法用量不适宜',
  '存在配伍禁忌或重复用药',
  '与患者过敏史冲突',
  '用药天数或数量超出规定',
  '特殊人群（儿童、孕妇、老年人）用药不适宜',
]
