// 心理测评：首页服务入口与服务记录（已完成的测评报告）
import { get } from '../utils/request.js'

export default {
  key: 'psych',
  entry: {
    title: '心理测评',
    desc: '填写量表，查看报告',
    icon: '心',
    tone: 'blue',
    page: '/pages/psych/list',
  },
  // 服务记录：已提交的量表，点开看报告
  async records() {
    const r = await get('/psych/assignments?status=submitted&limit=50', { toast: false })
    return (r.items || []).map((a) => ({
      key: `psych-${a.id}`,
      tag: '心理测评',
      title: `${a.scale.short_name} · ${a.band_label || '已完成'}`,
      subtitle: `${a.patient.name}（${a.patient.relation_label}）· ${a.assigned_by.name}`,
      at: a.submitted_at,
      page: a.result_id ? `/pages/psych/report?id=${a.result_id}` : '/pages/psych/list',
    }))
  },
}
