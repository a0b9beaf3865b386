// Psych alerts reach a signed-in doctor on every console page: once the socket is
// authenticated, subscribe to the user's own topic and pop a notification for each
// psych.alert.* event. Views read `psychAlertFeed` to refresh live.
// Started once by views/psych/routes.js with the roles its pages declare.
import { h, reactive, watch } from 'vue'
import { ElNotification } from 'element-plus'
import { realtime, realtimeState } from '@/realtime'

export const psychAlertFeed = reactive({ version: 0, last: null })

const TITLES = {
  'psych.alert.raised': '心理测评危急预警',
  'psych.alert.escalated': '预警已升级（值班）',
  'psych.alert.acknowledged': '预警已确认',
  'psych.alert.closed': '预警已关闭',
}

let topic = null

function onEvent(frame) {
  const event = frame.event || ''
  if (!event.startsWith('psych.')) return
  psychAlertFeed.version += 1
  psychAlertFeed.last = frame
  if (event !== 'psych.alert.raised' && event !== 'psych.alert.escalated') return
  const d = frame.data || {}
  ElNotification({
    title: TITLES[event],
    type: 'error',
    duration: 0,
    customClass: 'psych-alert-notification',
    message: h('div', [
      h('div', `${d.patient_name || ''}（${d.scale_code || ''}）`),
      h('div', d.label || ''),
      h('a', { href: '#/psych/alerts', style: 'color:#b4262b' }, '立即处理'),
    ]),
  })
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
