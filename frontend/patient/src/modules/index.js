// 患者端的功能模块：每个模块一个文件，登记首页服务入口（entry）和可选的服务记录（records）。
// 新模块在此加一行 import；没有实现的模块不放入口。
//   entry:   { title, desc, icon (一个字), tone ('teal'|'blue'|'orange'), page, visible?(me), badge?() -> 数字 }
//   records: async () => [{ key, tag, title, subtitle, at (ISO), page }]
import psych from './psych.js'
import patients from './patients.js'
import commerce from './commerce.js'
import pharmacy from './pharmacy.js'
import consultations from './consultations.js'

export const MODULES = [consultations, psych, commerce, pharmacy, patients]

export function homeEntries(me) {
  return MODULES.filter((m) => m.entry && (!m.entry.visible || m.entry.visible(me))).map((m) => ({ key: m.key, ...m.entry }))
}

export async function allRecords() {
  const sources = MODULES.filter((m) => typeof m.records === 'function')
  const settled = await Promise.allSettled(sources.map((m) => m.records()))
  const items = []
  let failed = 0
  settled.forEach((s) => {
    if (s.status === 'fulfilled') items.push(...s.value)
    else failed += 1
  })
  items.sort((a, b) => String(b.at || '').localeCompare(String(a.at || '')))
  return { items, failed }
}

// 入口角标（如待支付订单数）：{ key: 数字 }，取不到的入口不显示角标
export async function entryBadges(me) {
  const withBadge = MODULES.filter((m) => m.entry && typeof m.entry.badge === 'function' && (!m.entry.visible || m.entry.visible(me)))
  const settled = await Promise.allSettled(withBadge.map((m) => m.entry.badge()))
  const out = {}
  settled.forEach((s, i) => {
    if (s.status === 'fulfilled' && s.value > 0) out[withBadge[i].key] = s.value
  })
  return out
}
