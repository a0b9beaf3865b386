// 在线问诊 (format: views/routes.js): the doctor's workstation — today's queue and the
// tracking board, and the visit room (video beside the chat, the countdown, the record,
// prescribing, scales). The route names are the ones the consultation to-dos point at.
import { Calendar, Service } from '@element-plus/icons-vue'

const doctors = ['doctor']

export default [
  {
    path: 'consultations',
    name: 'consult-workbench',
    component: () => import('./ConsultWorkbenchView.vue'),
    title: '问诊工作台',
    icon: Service,
    roles: doctors,
    menu: true,
    group: '在线问诊',
    order: 10,
  },
  {
    path: 'consultations/schedule',
    name: 'consult-schedule',
    component: () => import('./ScheduleView.vue'),
    title: '我的排班',
    icon: Calendar,
    roles: doctors,
    menu: true,
    group: '在线问诊',
    order: 11, // right under 问诊工作台, in its group
  },
  {
    path: 'consultations/visits/:id',
    name: 'consult-visit',
    component: () => import('./VisitRoomView.vue'),
    title: '问诊室',
    roles: doctors,
  },
]
