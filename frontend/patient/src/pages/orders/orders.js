// 订单页面共用：状态文字与颜色、下一步提示、支付方式名称、退款状态（患者看到的说法）
import { get } from '../../utils/request.js'
import { watchEvent } from '../../utils/live.js'

// 订单状态 -> 患者看到的文字、颜色（tag-xxx）和下一步提示
export const ORDER_STATUS = {
  created: { label: '待支付', tone: 'warn', hint: '请在倒计时结束前完成支付，超时订单会自动取消' },
  paid: { label: '已支付', tone: 'ok', hint: '医院已收到您的付款，正在为您安排服务' },
  fulfilling: { label: '进行中', tone: 'info', hint: '服务正在进行中，完成后订单会自动更新' },
  completed: { label: '已完成', tone: 'ok', hint: '服务已完成。如有疑问，可在“消息”中联系客服' },
  cancelled: { label: '已取消', tone: 'mute', hint: '订单已取消，没有产生费用' },
  refund_requested: { label: '退款中', tone: 'warn', hint: '退款申请已提交，客服审核后原路退回' },
  partially_refunded: { label: '部分退款', tone: 'info', hint: '部分款项已原路退回，其余服务继续有效' },
  refunded: { label: '已退款', tone: 'mute', hint: '款项已原路退回您的支付账户' },
}

export function orderStatus(o) {
  const s = ORDER_STATUS[o && o.status]
  return s || { label: (o && o.status_label) || '处理中', tone: 'info', hint: '' }
}

// 列表页的标签页：每个标签包含哪些状态
export const TABS = [
  { key: 'all', title: '全部', statuses: null },
  { key: 'unpaid', title: '待支付', statuses: ['created'] },
  { key: 'active', title: '进行中', statuses: ['paid', 'fulfilling'] },
  { key: 'done', title: '已完成', statuses: ['completed'] },
  { key: 'refund', title: '退款', statuses: ['refund_requested', 'partially_refunded', 'refunded'] },
]

export const TAB_EMPTY = {
  all: ['暂无订单', '在线问诊、检查、药品等服务下单后，订单会显示在这里'],
  unpaid: ['没有待支付的订单', '需要支付的订单会显示在这里，请在倒计时内完成支付'],
  active: ['没有进行中的订单', '已支付、服务尚未完成的订单会显示在这里'],
  done: ['没有已完成的订单', '服务完成后，订单会显示在这里'],
  refund: ['没有退款记录', '申请退款后，可在这里查看审核和到账进度'],
}

// 退款单状态 -> 患者看到的说法
export const REFUND_STATUS = {
  requested: { label: '退款审核中', tone: 'warn', hint: '客服会尽快审核，审核通过后原路退回' },
  approved: { label: '退款审核中', tone: 'warn', hint: '金额较大，正在复核，通过后原路退回' },
  processing: { label: '退款处理中', tone: 'info', hint: '已提交支付平台，一般 1-3 个工作日到账' },
  succeeded: { label: '退款成功', tone: 'ok', hint: '已原路退回您的支付账户' },
  failed: { label: '退款处理中', tone: 'info', hint: '支付平台暂未完成退款，客服正在处理，无需重复申请' },
  rejected: { label: '退款未通过', tone: 'mute', hint: '' },
}

export function refundStatus(r) {
  return REFUND_STATUS[r && r.status] || { label: (r && r.status_label) || '处理中', tone: 'info', hint: '' }
}

export const PROVIDER_LABEL = { sandbox: '模拟支付（演示）', wechat: '微信支付', alipay: '支付宝' }
export const CHANNEL_LABEL = {
  sandbox: '模拟支付（演示）',
  wechat_jsapi: '微信支付',
  wechat_mini: '微信支付',
  alipay_mini: '支付宝',
}

export const REFUND_REASONS = ['不需要了', '下错单了', '重复支付', '医生建议不需要', '服务未按时提供', '其他原因']

/** order.updated：{order_no, status, status_label, paid_fen, refunded_fen, payable_yuan} */
export function watchOrders(onUpdate, onResync) {
  return watchEvent('order.updated', onUpdate, onResync)
}

export { currentUser, watchEvent } from '../../utils/live.js'
