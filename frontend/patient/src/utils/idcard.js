// 中国居民身份证（18 位）本地校验：仅用于即时提示，以服务器校验为准
const WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
const CHECK_CODES = '10X98765432'

// 返回 '' 表示通过，否则返回中文错误提示
export function validateIdNumber(raw) {
  const id = String(raw || '').trim().toUpperCase()
  if (!id) return '请输入身份证号码'
  if (id.length !== 18) return '身份证号码应为18位'
  if (!/^\d{17}[\dX]$/.test(id)) return '身份证号码格式不正确：前17位应为数字，最后一位为数字或X'
  const y = Number(id.slice(6, 10))
  const m = Number(id.slice(10, 12))
  const d = Number(id.slice(12, 14))
  const birth = new Date(y, m - 1, d)
  if (
    y < 1900 ||
    birth.getFullYear() !== y ||
    birth.getMonth() !== m - 1 ||
    birth.getDate() !== d ||
    birth.getTime() > Date.now()
  ) {
    return '身份证号码中的出生日期不正确'
  }
  let sum = 0
  for (let i = 0; i < 17; i++) sum += Number(id[i]) * WEIGHTS[i]
  if (CHECK_CODES[sum % 11] !== id[17]) return '身份证号码校验位不正确，请核对后重新输入'
  return ''
}

export function normalizeIdNumber(raw) {
  return String(raw || '').trim().toUpperCase()
}

export function isValidPhone(phone) {
  return /^1\d{10}$/.test(String(phone || '').trim())
}
