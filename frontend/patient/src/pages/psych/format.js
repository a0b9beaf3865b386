// 时间一律按北京时间（Asia/Shanghai, UTC+8）显示，与设备时区无关
export { formatDateTime as formatTime } from '../../utils/time.js'
