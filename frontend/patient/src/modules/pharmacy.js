// 我的处方：首页服务入口与服务记录（已支付、已发药的处方）
import { get } from '../utils/request.js'
import { rxStatus } from '../pages/prescriptions/rx.js'

export default {
  key: 'prescriptions',
  entry: {
    title: '我的处方',
    desc: '处方审核、用法与支付',
    icon: '药',
    tone: 'teal',
    page: '/pages/prescriptions/list',
  },
  async records() {
    const r = await get('/pharmacy/prescriptions?limit=50', { toast: false })
    return (r.items || [])
      .filter((p) => p.status === 'paid' || p.status === 'dispensed')
      .map((p) => ({
        key: `rx-${p.id}`,
        tag: '处方',
        title: `${(p.lines || []).map((l) => l.drug_name).join('、') || p.kind_label} · ${rxStatus(p).label}`,
        subtitle: `${p.patient.name} · ${p.doctor.name}${p.doctor.department ? '（' + p.doctor.department + '）' : ''}`,
        at: p.dispensed_at || p.paid_at || p.issued_at || p.created_at,
        page: `/pages/prescriptions/detail?id=${p.id}`,
      }))
  },
}
