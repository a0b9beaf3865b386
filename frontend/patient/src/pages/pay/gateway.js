// 支付方式：
// - 内嵌默认（模拟支付）：支付参数里带 sandboxTrade / sandboxSheet，任何平台都打开本应用的收银台页面，
//   调用医院服务器上的模拟支付网关（/sandbox/pay/trades/<预支付号>：查看、支付、取消）；
// - 微信小程序：uni.requestPayment（参数即后端给的 timeStamp、nonceStr、package、signType、paySign）；
// - 支付宝小程序：my.tradePay（参数 tradeNO）；
// - 微信内打开的 H5：WeixinJSBridge getBrandWCPayRequest（同一组参数）。
// 客户端的“支付成功”只表示用户完成了操作：订单是否已支付，一律以服务器的订单状态为准。
import { getOrigin } from '../../utils/config.js'

export function isSandbox(params) {
  return !!(params && params.sandboxTrade && params.sandboxSheet)
}

function gatewayRequest(url, method, data) {
  return new Promise((resolve, reject) => {
    uni.request({
      url: getOrigin() + url,
      method,
      data: method === 'POST' ? data || {} : undefined,
      header: { 'Content-Type': 'application/json' },
      dataType: 'text',
      timeout: 15000,
      success(res) {
        let body = res.data
        try {
          body = typeof body === 'string' && body ? JSON.parse(body) : body
        } catch (e) {
          body = null
        }
        if (res.statusCode >= 200 && res.statusCode < 300) resolve(body || {})
        else reject(Object.assign(new Error((body && body.message) || '支付服务暂时不可用，请稍后重试'), { status: res.statusCode, code: body && body.code, detail: (body && body.detail) || {} }))
      },
      fail() {
        reject(Object.assign(new Error('网络连接失败，请检查网络后重试'), { status: 0, code: 'network_error', detail: {} }))
      },
    })
  })
}

/** 收银台要显示的内容：商户名、金额、描述、状态 */
export function sandboxTrade(params) {
  return gatewayRequest(params.sandboxSheet, 'GET')
}

/** 模拟“确认支付”：网关核对 paySign 后记为已付，并异步回调医院的支付通知接口 */
export function sandboxPay(params) {
  return gatewayRequest(`${params.sandboxSheet}/pay`, 'POST', params)
}

/** 用户关闭收银台（相当于 requestPayment:fail cancel），订单保持待支付 */
export function sandboxCancel(params) {
  return gatewayRequest(`${params.sandboxSheet}/cancel`, 'POST', {})
}

/**
 * 小程序原生支付。resolve('ok') 用户完成支付；resolve('cancel') 用户取消；reject 支付失败。
 */
export function nativePay(params) {
  return new Promise((resolve, reject) => {
    let called = false
    // #ifdef MP-WEIXIN
    called = true
    uni.requestPayment({
      provider: 'wxpay',
      timeStamp: params.timeStamp,
      nonceStr: params.nonceStr,
      package: params.package,
      signType: params.signType,
      paySign: params.paySign,
      success: () => resolve('ok'),
      fail: (e) => {
        if (e && /cancel/.test(e.errMsg || '')) resolve('cancel')
        else reject(new Error('微信支付未完成，请稍后重试'))
      },
    })
    // #endif
    // #ifdef MP-ALIPAY
    called = true
    my.tradePay({
      tradeNO: params.tradeNO,
      success: (r) => {
        // 9000 成功；8000/6004 结果未知（以服务器为准）；6001 用户取消
        if (r.resultCode === '9000' || r.resultCode === '8000' || r.resultCode === '6004') resolve('ok')
        else if (r.resultCode === '6001') resolve('cancel')
        else reject(new Error('支付宝支付未完成，请稍后重试'))
      },
      fail: () => reject(new Error('支付宝支付未完成，请稍后重试')),
    })
    // #endif
    // #ifdef H5
    // 微信内打开的 H5（JSAPI 支付）
    if (typeof window !== 'undefined' && window.WeixinJSBridge && params.package && params.paySign) {
      called = true
      window.WeixinJSBridge.invoke('getBrandWCPayRequest', params, (res) => {
        const msg = (res && res.err_msg) || ''
        if (msg === 'get_brand_wcpay_request:ok') resolve('ok')
        else if (msg === 'get_brand_wcpay_request:cancel') resolve('cancel')
        else reject(new Error('微信支付未完成，请稍后重试'))
      })
    }
    // #endif
    if (!called) reject(new Error('当前环境不支持该支付方式，请在微信或支付宝中打开后支付'))
  })
}
