// 处方页面共用：患者看到的状态说法与下一步提示
export const RX_STATUS = {
  signed: { label: '待提交审核', tone: 'info', hint: '医生已开具并电子签名，提交药师审核后即可支付' },
  submitted: { label: '药师审核中', tone: 'warn', hint: '药师正在审核处方，通过后可在线支付' },
  approved: { label: '待支付', tone: 'warn', hint: '药师已审核通过，请在有效期内支付' },
  rejected: { label: '医生调整中', tone: 'info', hint: '药师建议调整用药，医生修改后会重新提交审核，请耐心等待' },
  revised: { label: '医生调整中', tone: 'info', hint: '医生正在修改处方，修改后会重新提交药师审核' },
  paid: { label: '已支付', tone: 'ok', hint: '已支付，药房正在为您配药' },
  dispensed: { label: '已发药', tone: 'ok', hint: '药房已发药，请按医嘱服用' },
  expired: { label: '已过期', tone: 'mute', hint: '处方已超过有效期，未支付。如需继续用药，请复诊后由医生重新开具' },
  cancelled: { label: '已作废', tone: 'mute', hint: '医生已作废这张处方，如有疑问请在“消息”中咨询医生' },
}

export function rxStatus(p) {
  return RX_STATUS[p && p.status] || { label: (p && p.status_label) || '处理中', tone: 'info', hint: '' }
}

/** 仍可支付：审核通过且未过有效期 */
export function rxPayable(p, now = Date.now()) {
  if (!p || p.status !== 'approved' || !p.expires_at) return false
  const end = new Date(p.expires_at).getTime()
  return !isNaN(end) && end > now
}

/** 接口的数量字符串 -> 显示用数字（"2E+1" 也显示为 20，"0.500" 显示为 0.5） */
export function num(s) {
  const n = Number(s)
  return Number.isFinite(n) ? String(Math.round(n * 1000) / 1000) : String(s || '')
}

/** “每次 5mg，每日一次，口服，共 7 天” */
export function lineUsage(ln) {
  const dose = `${num(ln.dose)}${ln.dose_unit || ''}`
  return [`每次 ${dose}`, ln.frequency_label, ln.route_label, `共 ${ln.days} 天`].filter(Boolean).join('，')
}
