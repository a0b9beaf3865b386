import dayjs from 'dayjs'
import utc from 'dayjs/plugin/utc'
import timezone from 'dayjs/plugin/timezone'
import 'dayjs/locale/zh-cn'

dayjs.extend(utc)
dayjs.extend(timezone)
dayjs.locale('zh-cn')

export const TZ = 'Asia/Shanghai'

/** Format an ISO timestamp (any offset) in Asia/Shanghai. Empty -> placeholder. */
export function formatTime(value, fmt = 'YYYY-MM-DD HH:mm:ss', empty = '—') {
  if (value === null || value === undefined || value === '') return empty
  const d = dayjs(value)
  if (!d.isValid()) return String(value)
  return d.tz(TZ).format(fmt)
}

/** True when an ISO timestamp lies in the future. */
export function isFuture(value) {
  if (!value) return false
  const d = dayjs(value)
  return d.isValid() && d.isAfter(dayjs())
}

export { dayjs }
