// Psych alerts reach a signed-in doctor on every console page: once the socket is
// authenticated, subscribe to the user's own topic and pop a notification for each
// psych.alert.* event. Views read `psychAlertFeed` to refresh live.
// Started once by views/psych/routes.js with the roles its pages declare.
// The pop-up sits in the bottom-right corner: never over the console header
// (ConsoleLayout's 56px bar with 退出登录 and the connection status), nor over the
// top rows of a page, where the alert list has its 确认 buttons. It counts down to
// the alert's escalation deadline (`ack_deadline` of the event), shown in Beijing time.
import { defineComponent, h, onBeforeUnmount, reactive, ref, watch } from 'vue'
import { ElNotification } from 'element-plus'
import { realtime, realtimeState } from '@/realtime'
import { formatTime } from '@/utils/time'

export const ALERT_POPUP_POSITION = 'bottom-right'
export const ALERT_POPUP_OFFSET = 16

export const psychAlertFeed = reactive({ version: 0, last: null })

const TITLES = {
  'psych.alert.raised': '心理测评危急预警',
  'psych.alert.escalated': '预警已升级（值班）',
  'psych.alert.acknowledged': '预警已确认',
  'psych.alert.closed': '预警已关闭',
}

let topic = null
const open = new Map() // alert id -> notification handle

/** "X 分 Y 秒后升级至值班医生", ticking every second until the deadline passes. */
export const EscalationCountdown = defineComponent({
  name: 'EscalationCountdown',
  props: { deadline: { type: String, default: '' }, escalated: { type: Boolean, default: false } },
  setup(props) {
    const now = ref(Date.now())
    const timer = setInterval(() => (now.value = Date.now()), 1000)
    onBeforeUnmount(() => clearInterval(timer))
    return () => {
      if (props.escalated) {
        return h('div', { class: 'psych-alert-countdown', 'data-testid': 'psych-alert-countdown' }, '已超时未确认，已升级至值班医生')
      }
      const end = Date.parse(props.deadline)
      if (Number.isNaN(end)) return null
      const left = Math.max(0, Math.ceil((end - now.value) / 1000))
      const m = Math.floor(left / 60)
      const sec = left % 60
      const text = left > 0 ? `${m > 0 ? `${m} 分 ` : ''}${sec} 秒后升级至值班医生` : '已超过确认时限，正在升级至值班医生'
      return h('div', { class: 'psych-alert-countdown', 'data-testid': 'psych-alert-countdown', 'data-seconds-left': String(left) }, [
        h('strong', { style: 'color:#b4262b' }, text),
        h('div', { style: 'color:#8a97a3;font-size:12px' }, `请在北京时间 ${formatTime(props.deadline, 'HH:mm:ss')} 前确认`),
      ])
    }
  },
})

function onEvent(frame) {
  const event = frame.event || ''
  if (!event.startsWith('psych.')) return
  psychAlertFeed.version += 1
  psychAlertFeed.last = frame
  const d = frame.data || {}
  const previous = open.get(d.alert_id)
  if (event !== 'psych.alert.raised' && event !== 'psych.alert.escalated') {
    // Acknowledged or closed (here or elsewhere): its pop-up has done its job.
    if (previous) previous.close()
    open.delete(d.alert_id)
    return
  }
  if (previous) previous.close()
  const handle = ElNotification({
    title: TITLES[event],
    type: 'error',
    duration: 0,
    position: ALERT_POPUP_POSITION,
    offset: ALERT_POPUP_OFFSET,
    customClass: 'psych-alert-notification',
    onClose: () => {
      if (open.get(d.alert_id) === handle) open.delete(d.alert_id)
    },
    message: h('div', { class: 'psych-alert-body' }, [
      h('div', `${d.patient_name || ''}（${d.scale_code || ''}）`),
      h('div', d.label || ''),
      h(EscalationCountdown, { deadline: d.ack_deadline || '', escalated: event === 'psych.alert.escalated' }),
      h('a', { href: '#/psych/alerts', style: 'color:#b4262b' }, '立即处理'),
    ]),
  })
  if (d.alert_id != null) open.set(d.alert_id, handle)
}

let started = false

/** Watch the signed-in user: holders of `roles` get the alert pop-ups. */
export function watchPsychAlerts(roles) {
  if (started) return
  started = true
  watch(
    () => (realtimeState.user && roles.includes(realtimeState.user.role) ? realtimeState.user.id : null),
    (id) => {
      const wanted = id ? `user:${id}` : null
      if (topic && topic !== wanted) realtime.unsubscribe(topic, onEvent).catch(() => {})
      if (wanted && wanted !== topic) realtime.subscribe(wanted, onEvent).catch(() => {})
      topic = wanted
    },
    { immediate: true },
  )
}
