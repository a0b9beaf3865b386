// 下单（无购物车）：各模块把要买的项目交给 checkout()，成功后打开收银台。
// 同一件事的重试用同一个 client_key（存在本机），服务器据此返回同一笔订单，不会重复下单。
import { post } from '../../utils/request.js'

function channelOfPlatform() {
  // #ifdef MP-WEIXIN
  return 'wechat_mini'
  // #endif
  // #ifdef MP-ALIPAY
  // eslint-disable-next-line no-unreachable
  return 'alipay_mini'
  // #endif
  // eslint-disable-next-line no-unreachable
  return 'sandbox'
}

function newKey() {
  const rnd = Math.random().toString(36).slice(2, 10)
  return `ck-${Date.now().toString(36)}-${rnd}`
}

function keyFor(intent, channel) {
  const storageKey = `ih_checkout_${intent}_${channel}`
  let key = ''
  try {
    key = uni.getStorageSync(storageKey) || ''
  } catch (e) {
    key = ''
  }
  if (!key) {
    key = newKey()
    try {
      uni.setStorageSync(storageKey, key)
    } catch (e) {
      // 存不下也能下单，只是重试时可能得到新订单号（服务器仍按同一请求去重失败时提示）
    }
  }
  return key
}

/**
 * @param {object} a
 * @param {string} a.intent   这次购买的稳定标识（如 'rx-12-v2'），用来生成幂等键
 * @param {number} a.patientId
 * @param {Array<{kind:string, ref:string, quantity?:number}>} a.items
 * @returns {Promise<object>} 订单（OrderOut）；失败时 reject ApiError（code 见 commerce 错误码）
 */
export async function checkout({ intent, patientId, items }) {
  const body = (channel) => ({
    patient_id: patientId,
    items: items.map((x) => ({ kind: x.kind, ref: String(x.ref), quantity: x.quantity || 1 })),
    client_key: keyFor(intent, channel),
    channel,
  })
  const channel = channelOfPlatform()
  try {
    return await post('/commerce/orders', body(channel), { toast: false })
  } catch (e) {
    // 内嵌演示环境没有接入微信/支付宝：改用模拟支付
    if (channel !== 'sandbox' && e && e.code === 'commerce.channel_unavailable') {
      return post('/commerce/orders', body('sandbox'), { toast: false })
    }
    throw e
  }
}

export function openPaySheet(orderNo) {
  uni.navigateTo({ url: `/pages/pay/sheet?no=${encodeURIComponent(orderNo)}` })
}
