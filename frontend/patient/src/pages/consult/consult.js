// 在线复诊页面共用：问诊状态的说法、问诊频道（visit:<id>）的实时事件、号源按天分组、倒计时、上传病历。
// 接口见 docs/consultations-api.md（金额为分，时间为带时区的 ISO，显示一律北京时间）。
import { realtime } from '../../utils/realtime.js'
import { getApiBase } from '../../utils/config.js'
import { getToken } from '../../utils/auth.js'
import { ApiError } from '../../utils/request.js'
import { yuan } from '../../utils/money.js'
import { formatDate, formatDateTime } from '../../utils/time.js'

export const KIND_LABEL = { text: '图文问诊', video: '视频问诊' }
export const KINDS = [
  { key: 'text', label: '图文问诊', desc: '文字、图片与医生交流' },
  { key: 'video', label: '视频问诊', desc: '与医生视频面对面' },
]

// 问诊状态 -> 患者看到的文字、颜色（tag-xxx）和下一步提示
export const VISIT_STATUS = {
  pending_payment: { label: '待支付', tone: 'warn', hint: '请尽快完成支付，支付后进入候诊' },
  waiting: { label: '候诊中', tone: 'info', hint: '请留意叫号，医生接诊后会通知您' },
  accepted: { label: '医生已接诊', tone: 'info', hint: '医生已确认复诊，马上会叫您进入问诊' },
  in_progress: { label: '问诊中', tone: 'ok', hint: '医生已叫号，请进入问诊室' },
  ended: { label: '已结束', tone: 'mute', hint: '问诊已结束，可查看问诊小结并评价' },
  cancelled: { label: '已取消', tone: 'mute', hint: '问诊已取消，已付费用按规则原路退回' },
  terminated: { label: '医生已终止', tone: 'mute', hint: '医生建议您线下就诊，费用已全额退回' },
}

export function visitStatus(v) {
  return VISIT_STATUS[v && v.status] || { label: (v && v.status_label) || '处理中', tone: 'info', hint: '' }
}

export const OPEN_STATUSES = ['pending_payment', 'waiting', 'accepted', 'in_progress']

export function can(v, action) {
  return !!(v && Array.isArray(v.allowed_actions) && v.allowed_actions.includes(action))
}

/** 分 -> “¥30.00”；空 -> empty */
export function fen(v, empty = '') {
  return yuan(v, empty)
}

export function when(iso) {
  return formatDateTime(iso)
}

// 职称：接口给 title_label（主任医师等）
export function doctorLine(d) {
  if (!d) return ''
  return [d.title_label, d.department && d.department.name].filter(Boolean).join(' · ')
}

export function initial(name) {
  return String(name || '医').slice(0, 1)
}

export function stars(rating) {
  if (rating === null || rating === undefined) return ''
  return `★ ${Number(rating).toFixed(1)}`
}

// 退款规则（与后端一致：医生接诊前取消全额退款；接诊后不能自行取消）
export const REFUND_RULE = '医生接诊前可随时取消，费用全额原路退回；医生接诊后不能自行取消，如有问题请联系客服。'
export const HELP_TEXT = '如遇急危重症，请立即拨打 120 或前往医院急诊。在线问诊仅限复诊，问诊问题可在“消息”中联系客服。'

// ---- 北京时间的日期（号源按天分组） ----
const SH = 8 * 3600 * 1000
const WEEK = ['周日', '周一', '周二', '周三', '周四', '周五', '周六']

/** 北京时间今天的 YYYY-MM-DD */
export function todayBeijing(now = Date.now()) {
  return formatDate(new Date(now))
}

function dayLabel(iso, now = Date.now()) {
  const d = new Date(iso)
  const dayOf = (ms) => Math.floor((ms + SH) / 86400000)
  const diff = dayOf(d.getTime()) - dayOf(now)
  const sh = new Date(d.getTime() + SH)
  const md = `${sh.getUTCMonth() + 1}月${sh.getUTCDate()}日`
  if (diff === 0) return `今天 ${md}`
  if (diff === 1) return `明天 ${md}`
  return `${WEEK[sh.getUTCDay()]} ${md}`
}

export function hm(iso) {
  const d = new Date(iso)
  if (isNaN(d.getTime())) return ''
  const sh = new Date(d.getTime() + SH)
  return `${String(sh.getUTCHours()).padStart(2, '0')}:${String(sh.getUTCMinutes()).padStart(2, '0')}`
}

/** 号源 -> [{key (日期), label (今天 12月1日), slots: [...]}]，按时间排序 */
export function slotsByDay(slots, now = Date.now()) {
  const days = []
  const byKey = {}
  ;[...(slots || [])]
    .sort((a, b) => String(a.starts_at).localeCompare(String(b.starts_at)))
    .forEach((s) => {
      const key = formatDate(s.starts_at)
      if (!byKey[key]) {
        byKey[key] = { key, label: dayLabel(s.starts_at, now), slots: [] }
        days.push(byKey[key])
      }
      byKey[key].slots.push(s)
    })
  return days
}

export function slotBookable(s, now = Date.now()) {
  return s && s.status === 'open' && s.remaining > 0 && new Date(s.starts_at).getTime() > now
}

/** “12月1日 周二 09:30-10:00” */
export function slotText(slot) {
  if (!slot || !slot.starts_at) return ''
  return `${dayLabel(slot.starts_at)} ${hm(slot.starts_at)}${slot.ends_at ? '-' + hm(slot.ends_at) : ''}`
}

export function nextSlotText(iso) {
  if (!iso) return '暂无可约时段'
  return `最近可约 ${dayLabel(iso)} ${hm(iso)}`
}

/** 周岁（按北京时间今天） */
export function ageOf(birthDate, now = Date.now()) {
  if (!birthDate) return null
  const [y, m, d] = String(birthDate).split('-').map(Number)
  const t = todayBeijing(now).split('-').map(Number)
  let age = t[0] - y
  if (t[1] < m || (t[1] === m && t[2] < d)) age -= 1
  return age
}

// ---- 问诊频道：visit:<public_id> 上的事件 ----
/**
 * 订阅 visit:<id>：handlers[event](data)（visit.updated / visit.queue / visit.called / timed.*）；
 * onResync：断线重连后或服务器要求补齐时调用（页面重新拉取问诊）。返回取消订阅的函数。
 */
export function watchVisit(visitId, handlers, onResync) {
  const topic = `visit:${visitId}`
  const handler = (evt) => {
    if (!evt || !evt.event) return
    const fn = handlers[evt.event]
    if (fn) fn(evt.data || {})
  }
  let wasOpen = realtime.status === 'open'
  const offs = [
    realtime.onStatus((s) => {
      if (s === 'open' && !wasOpen && onResync) onResync()
      wasOpen = s === 'open'
    }),
  ]
  if (onResync) offs.push(realtime.onResync(() => onResync()))
  realtime.connect()
  realtime.subscribe(topic, handler).catch(() => {})
  return () => {
    offs.forEach((off) => off())
    realtime.unsubscribe(topic, handler).catch(() => {})
  }
}

// ---- 计时会话的倒计时：以服务器时钟为准 ----
/**
 * 一个倒计时：收到 session（ConsultSessionOut）或 timed.tick 时 sync({deadline, server_now})，
 * 记下服务器时钟与本机的差；两次 tick 之间用本机时钟加差值计算剩余秒数。
 */
export function makeCountdown() {
  let deadlineMs = 0
  let offsetMs = 0 // 服务器时间 - 本机时间
  return {
    sync({ deadline, server_now: serverNow, remaining_seconds: remaining }) {
      const local = Date.now()
      const srv = serverNow ? new Date(serverNow).getTime() : NaN
      if (!isNaN(srv)) offsetMs = srv - local
      const dl = deadline ? new Date(deadline).getTime() : NaN
      if (!isNaN(dl)) deadlineMs = dl
      else if (typeof remaining === 'number') deadlineMs = local + offsetMs + remaining * 1000
    },
    remaining(now = Date.now()) {
      if (!deadlineMs) return null
      return Math.max(0, Math.ceil((deadlineMs - (now + offsetMs)) / 1000))
    },
    get known() {
      return !!deadlineMs
    },
  }
}

/** 剩余秒数 -> 颜色：5 分钟内橙色，1 分钟内红色 */
export function countdownTone(seconds) {
  if (seconds === null || seconds === undefined) return 'normal'
  if (seconds <= 60) return 'danger'
  if (seconds <= 300) return 'warn'
  return 'normal'
}

// ---- 上传既往病历（multipart）----
/**
 * POST consultations/patients/{id}/prior-records：hospital, visit_date, diagnosis, summary, files[]。
 * H5 一次上传多张（uni.uploadFile 的 files）；小程序的 uploadFile 一次只能带一个文件，只传第一张。
 */
export function uploadPriorRecord(patientId, form, filePaths) {
  const url = `${getApiBase()}/consultations/patients/${patientId}/prior-records`
  return new Promise((resolve, reject) => {
    const opts = {
      url,
      formData: {
        hospital: form.hospital,
        visit_date: form.visit_date,
        diagnosis: form.diagnosis,
        summary: form.summary || '',
      },
      header: { Authorization: `Bearer ${getToken()}` },
      success(res) {
        let body = res.data
        try {
          body = typeof body === 'string' ? JSON.parse(body) : body
        } catch (e) {
          body = null
        }
        if (res.statusCode >= 200 && res.statusCode < 300 && body) resolve(body)
        else
          reject(
            new ApiError(
              res.statusCode,
              (body && body.code) || `http_${res.statusCode}`,
              (body && body.message) || '上传失败，请稍后重试',
              body && body.detail,
            ),
          )
      },
      fail() {
        reject(new ApiError(0, 'network_error', '网络连接失败，请检查网络后重试'))
      },
    }
    // #ifdef H5
    opts.files = filePaths.map((uri) => ({ name: 'files', uri }))
    // #endif
    // #ifndef H5
    opts.filePath = filePaths[0]
    opts.name = 'files'
    // #endif
    uni.uploadFile(opts)
  })
}

// The same list as the server's (apps/consultations/rating.py TAGS); others are refused.
export const RATING_TAGS = ['解答耐心', '讲解清楚', '回复及时', '态度亲切', '建议实用', '专业可信', '等待较久', '解释不够清楚']
export const STAR_WORDS = ['', '很不满意', '不满意', '一般', '满意', '非常满意']
