// Chinese names of the commerce codes the API sends without a label.
export const PROVIDERS = { sandbox: '沙箱支付', wechat: '微信支付', alipay: '支付宝' }
export const CHANNELS = { sandbox: '沙箱支付', wechat_jsapi: '微信公众号支付', wechat_mini: '微信小程序支付', alipay_mini: '支付宝小程序支付' }
export const LEDGER_KINDS = {
  charge: '应收',
  discount: '优惠',
  waiver: '费用减免',
  group: '团体支付',
  payment: '实收',
  refund: '退款',
  reversal: '冲销',
  balance: '借贷差额',
  received: '实收净额',
}
export const RECON_KINDS = { charge: '支付', payment: '支付', refund: '退款' }
export const ORDER_STATUSES = [
  { value: 'created', label: '待支付' },
  { value: 'paid', label: '已支付' },
  { value: 'fulfilling', label: '履约中' },
  { value: 'completed', label: '已完成' },
  { value: 'cancelled', label: '已取消' },
  { value: 'refund_requested', label: '退款中' },
  { value: 'partially_refunded', label: '部分退款' },
  { value: 'refunded', label: '已退款' },
]
export const ORDER_STATUS_TYPES = { created: 'warning', paid: 'success', fulfilling: 'primary', completed: 'success', cancelled: 'info', refund_requested: 'danger', partially_refunded: 'warning', refunded: 'info' }
export const REFUND_STATUS_TYPES = { requested: 'warning', approved: 'warning', processing: 'primary', succeeded: 'success', failed: 'danger', rejected: 'info' }

export const label = (table, code, fallback = '其他') => table[code] || fallback
