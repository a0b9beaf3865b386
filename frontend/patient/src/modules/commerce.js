// 我的订单：首页服务入口（待支付笔数角标）与服务记录（已支付、已完成、退款的订单）
import { get } from '../utils/request.js'
import { money } from '../utils/money.js'
import { orderStatus } from '../pages/orders/orders.js'

const RECORD_STATUSES = ['paid', 'fulfilling', 'completed', 'refund_requested', 'partially_refunded', 'refunded']

export default {
  key: 'orders',
  entry: {
    title: '我的订单',
    desc: '支付、退款与订单进度',
    icon: '单',
    tone: 'blue',
    page: '/pages/orders/list',
    // 角标：待支付的订单数（一次小请求）
    async badge() {
      const r = await get('/commerce/orders?status=created&limit=1', { toast: false })
      return (r && r.count) || 0
    },
  },
  // 服务记录：付过款的订单，点开看详情
  async records() {
    const r = await get('/commerce/orders?limit=50', { toast: false })
    return (r.items || [])
      .filter((o) => RECORD_STATUSES.includes(o.status))
      .map((o) => ({
        key: `order-${o.order_no}`,
        tag: '订单',
        title: `${o.title} · ${orderStatus(o).label}`,
        subtitle: `${o.patient_name} · 实付 ${money(o.paid, '¥0.00')}`,
        at: o.paid_at || o.created_at,
        page: `/pages/orders/detail?no=${encodeURIComponent(o.order_no)}`,
      }))
  },
}
