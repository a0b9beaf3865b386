// 心理测评 (format: views/routes.js): doctors only, declared once for the pages and the
// alert pop-ups that reach those roles on every console page.
import { DataAnalysis, Bell } from '@element-plus/icons-vue'
import { watchPsychAlerts } from './alertWatcher'
import { registerPatientTab } from '../patients/tabs'
import PsychPatientTab from './PsychPatientTab.vue'

const roles = ['doctor']

watchPsychAlerts(roles)
registerPatientTab({ key: 'psych', title: '心理测评', component: PsychPatientTab, roles, order: 40 })

export default [
  {
    path: 'psych',
    name: 'psych',
    component: () => import('./PsychPatientsView.vue'),
    title: '心理测评',
    icon: DataAnalysis,
    roles,
    menu: true,
    group: '心理测评',
    order: 40,
  },
  {
    path: 'psych/alerts',
    name: 'psych-alerts',
    component: () => import('./PsychAlertsView.vue'),
    title: '心理预警',
    icon: Bell,
    roles,
    menu: true,
    group: '心理测评',
    order: 41,
  },
  { path: 'psych/results/:id', name: 'psych-report', component: () => import('./PsychReportView.vue'), title: '测评报告', roles },
]
