// 金额显示：接口里的金额一律是整数“分”（fen），显示为“¥12.50”。
// （管理端也需要同样的格式化，之后统一到 frontend/shared。）

/** 1250 -> "¥12.50"；-300 -> "-¥3.00"；空值 -> empty */
export function yuan(fen, empty = '') {
  if (fen === null || fen === undefined || fen === '') return empty
  const n = Math.round(Number(fen))
  if (!Number.isFinite(n)) return empty
  const sign = n < 0 ? '-' : ''
  const abs = Math.abs(n)
  const whole = Math.floor(abs / 100)
  const cents = String(abs % 100).padStart(2, '0')
  return `${sign}¥${groupThousands(whole)}.${cents}`
}

function groupThousands(n) {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',')
}

/** 接口的 {fen, yuan} 对象 -> "¥12.50" */
export function money(m, empty = '') {
  if (!m || typeof m !== 'object') return empty
  return yuan(m.fen, empty)
}

/** 剩余秒数 -> "14:05"（超过一小时为 "1:02:05"） */
export function countdown(seconds) {
  const s = Math.max(0, Math.floor(seconds))
  const h = Math.floor(s / 3600)
  const m = Math.floor((s % 3600) / 60)
  const ss = String(s % 60).padStart(2, '0')
  return h ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`
}
