// 配送页面共用：状态说法、下一步提示、来源名称
export const SHIPMENT_STATUS = {
  created: { label: '待发货', tone: 'info', hint: '药房正在准备，发货后会显示快递单号和物流进度' },
  booked: { label: '已下单', tone: 'info', hint: '已通知快递公司上门取件' },
  accepted: { label: '快递员已接单', tone: 'info', hint: '快递员正在前往药房取件' },
  picked_up: { label: '已揽收', tone: 'info', hint: '快递员已取件，正在发往您的地址' },
  in_transit: { label: '运输中', tone: 'info', hint: '包裹正在配送途中，请保持电话畅通' },
  delivered: { label: '已签收', tone: 'ok', hint: '包裹已签收。如有问题请在“消息”中联系客服' },
  failed: { label: '配送异常', tone: 'bad', hint: '配送遇到问题，客服会尽快与您联系重新安排' },
  returned: { label: '已退回', tone: 'mute', hint: '包裹已退回医院药房，客服会与您联系' },
  ready_for_pickup: { label: '待取件', tone: 'warn', hint: '药品已备好，请凭取件码到医院药房窗口领取' },
  picked_up_by_patient: { label: '已取件', tone: 'ok', hint: '您已在药房窗口领取' },
  cancelled: { label: '已取消', tone: 'mute', hint: '配送已取消' },
}

export function shipmentStatus(s) {
  return SHIPMENT_STATUS[s && s.status] || { label: (s && s.status_label) || '处理中', tone: 'info', hint: '' }
}

const SOURCE_LABEL = { 'pharmacy.prescription': '处方药品', 'commerce.order': '订单商品' }

export function sourceLabel(s) {
  return SOURCE_LABEL[s && s.source_kind] || '医院配送'
}
