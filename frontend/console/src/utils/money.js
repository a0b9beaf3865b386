// Money arrives as integer fen (with a display string from the server where it has one).
// yuan(12550) -> "¥125.50"; a MoneyOut {fen, yuan} is shown by its server string.
export function yuan(value) {
  if (value === null || value === undefined || value === '') return '—'
  if (typeof value === 'object') return value.yuan || yuan(value.fen)
  const fen = Number(value)
  if (!Number.isFinite(fen)) return '—'
  const sign = fen < 0 ? '-' : ''
  const abs = Math.abs(Math.round(fen))
  return `${sign}¥${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, '0')}`
}

/** Yuan text typed by a person ("12.5") -> fen (1250), or null when it is not an amount. */
export function fenOf(text) {
  const m = /^\s*(\d{1,9})(?:\.(\d{1,2}))?\s*$/.exec(String(text ?? ''))
  if (!m) return null
  return Number(m[1]) * 100 + Number((m[2] || '').padEnd(2, '0'))
}
