// Times shown to people are Beijing time (Asia/Shanghai, UTC+8, no daylight saving),
// whatever the device's zone. Plain arithmetic so it works in every mini-program runtime
// (some lack Intl time zones). Both apps import these.

const SHANGHAI_OFFSET_MS = 8 * 3600 * 1000
const p = (n) => String(n).padStart(2, '0')

function parts(value) {
  if (value === null || value === undefined || value === '') return null
  const d = value instanceof Date ? value : new Date(value)
  if (isNaN(d.getTime())) return null
  const sh = new Date(d.getTime() + SHANGHAI_OFFSET_MS)
  return {
    y: sh.getUTCFullYear(),
    m: sh.getUTCMonth() + 1,
    d: sh.getUTCDate(),
    hh: sh.getUTCHours(),
    mm: sh.getUTCMinutes(),
    ss: sh.getUTCSeconds(),
    ms: d.getTime(),
  }
}

/** 2026-12-01 09:30 (Beijing time). Unparseable or empty -> `empty`. */
export function formatDateTime(value, empty = '') {
  const t = parts(value)
  if (!t) return empty
  return `${t.y}-${p(t.m)}-${p(t.d)} ${p(t.hh)}:${p(t.mm)}`
}

/** 2026-12-01 (Beijing date). */
export function formatDate(value, empty = '') {
  const t = parts(value)
  if (!t) return empty
  return `${t.y}-${p(t.m)}-${p(t.d)}`
}

/** 今天 09:30 / 昨天 18:02 / 12月1日 09:30 / 2025年12月1日, relative to `now` in Beijing time. */
export function formatFriendly(value, now = new Date(), empty = '') {
  const t = parts(value)
  const n = parts(now)
  if (!t || !n) return empty
  const dayOf = (x) => Math.floor((x.ms + SHANGHAI_OFFSET_MS) / 86400000)
  const diff = dayOf(n) - dayOf(t)
  const hm = `${p(t.hh)}:${p(t.mm)}`
  if (diff === 0) return `今天 ${hm}`
  if (diff === 1) return `昨天 ${hm}`
  if (diff === -1) return `明天 ${hm}`
  if (t.y === n.y) return `${t.m}月${t.d}日 ${hm}`
  return `${t.y}年${t.m}月${t.d}日`
}
