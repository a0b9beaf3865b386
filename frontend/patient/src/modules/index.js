// 患者端的功能模块：每个模块一个文件，登记首页服务入口（entry）和可选的服务记录（records）。
// 新模块在此加一行 import；没有实现的模块不放入口。
//   entry:   { title, desc, icon (一个字), tone ('teal'|'blue'|'orange'), page, visible?(me) }
//   records: async () => [{ key, tag, title, subtitle, at (ISO), page }]
import psych from './psych.js'
import patients from './patients.js'

export const MODULES = [psych, patients]

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
