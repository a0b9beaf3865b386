// 在线复诊：首页服务入口（进行中的问诊数角标）与服务记录（已结束的问诊，点开看问诊小结）
import { get } from '../utils/request.js'
import { fen } from '../pages/consult/consult.js'

export default {
  key: 'consultations',
  entry: {
    title: '在线复诊',
    desc: '找医生图文、视频复诊',
    icon: '诊',
    tone: 'teal',
    page: '/pages/consult/index',
    // 角标：进行中的问诊（待支付、候诊、问诊中）
    async badge() {
      const r = await get('/consultations/visits?scope=open', { toast: false })
      return (r && r.length) || 0
    },
  },
  async records() {
    const r = await get('/consultations/visits?scope=history', { toast: false })
    return (r || [])
      .filter((v) => v.status === 'ended' || v.status === 'terminated')
      .map((v) => ({
        key: `visit-${v.id}`,
        tag: '在线复诊',
        title: `${v.doctor ? v.doctor.name + ' ' + (v.doctor.title_label || '') : v.department.name} · ${v.kind_label}`,
        subtitle: `${v.patient.name} · ${v.status === 'terminated' ? '医生已终止，已退款 ' + fen(v.refund_fen, '¥0.00') : v.rated ? '已评价' : '已结束，欢迎评价'}`,
        at: v.ended_at || v.created_at,
        page: v.status === 'ended' ? `/pages/consult/summary?id=${encodeURIComponent(v.id)}` : `/pages/consult/waiting?id=${encodeURIComponent(v.id)}`,
      }))
  },
}
