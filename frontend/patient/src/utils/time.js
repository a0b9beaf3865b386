// 时间一律按北京时间显示（frontend/shared/time.js），与设备时区无关
export { formatDateTime, formatDate, formatFriendly } from '../../../shared/time.js'
