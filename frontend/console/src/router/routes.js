// Table-driven routes. Console pages are children of the layout; the sidebar menu is built
// from the children that have meta.menu. meta.roles limits a page (and its menu item) to
// those roles; no meta.roles means every signed-in staff member. Later modules append here.
//   meta: { title, icon, menu: true, roles: [...], group?: '分组名', order?: number }
import { User, UserFilled, Document } from '@element-plus/icons-vue'
import { DataAnalysis, Bell } from '@element-plus/icons-vue'
// Side effect: psych alerts pop up on every console page for doctors.
import '@/views/psych/alertWatcher'
import { ChatDotRound } from '@element-plus/icons-vue'
import { VideoCamera } from '@element-plus/icons-vue'
import { FirstAidKit } from '@element-plus/icons-vue'

export const consoleRoutes = [
  {
    path: '',
    name: 'home',
    component: () => import('@/views/HomeView.vue'),
    meta: { title: '我的账号', icon: User, menu: true, order: 0 },
  },
  {
    path: 'im',
    name: 'im',
    component: () => import('@/views/im/ImView.vue'),
    meta: {
      title: '消息',
      icon: ChatDotRound,
      menu: true,
      roles: ['doctor', 'pharmacist', 'nurse', 'therapist', 'dietitian', 'cs_agent'],
      order: 10,
    },
  },
  {
    path: 'care',
    name: 'care',
    component: () => import('@/views/care/CareRelationshipsView.vue'),
    meta: {
      title: '我的接诊',
      icon: FirstAidKit,
      menu: true,
      roles: ['doctor', 'pharmacist', 'nurse', 'therapist', 'dietitian'],
      order: 15,
    },
  },
  {
    path: 'admin/users',
    name: 'admin-users',
    component: () => import('@/views/AdminUsersView.vue'),
    meta: { title: '用户管理', icon: UserFilled, menu: true, roles: ['sysadmin', 'secadmin'], order: 100 },
  },
  {
    path: 'audit',
    name: 'audit',
    component: () => import('@/views/AuditView.vue'),
    meta: { title: '审计日志', icon: Document, menu: true, roles: ['auditor'], order: 110 },
  },
  {
    path: 'psych',
    name: 'psych',
    component: () => import('@/views/psych/PsychPatientsView.vue'),
    meta: { title: '心理测评', icon: DataAnalysis, menu: true, roles: ['doctor'], group: '心理测评', order: 40 },
  },
  {
    path: 'psych/alerts',
    name: 'psych-alerts',
    component: () => import('@/views/psych/PsychAlertsView.vue'),
    meta: { title: '心理预警', icon: Bell, menu: true, roles: ['doctor'], group: '心理测评', order: 41 },
  },
  {
    path: 'psych/results/:id',
    name: 'psych-report',
    component: () => import('@/views/psych/PsychReportView.vue'),
    meta: { title: '测评报告', roles: ['doctor'] },
  },
  {
    path: 'recordings',
    name: 'recordings',
    component: () => import('@/views/recordings/RecordingsView.vue'),
    meta: {
      title: '问诊录像',
      icon: VideoCamera,
      menu: true,
      // Replay is for clinical staff who took part in the session (recordings.services.may_replay).
      roles: ['doctor', 'pharmacist', 'nurse', 'therapist', 'dietitian'],
      order: 50,
    },
  },
  {
    path: 'forbidden',
    name: 'forbidden',
    component: () => import('@/views/ForbiddenView.vue'),
    meta: { title: '无权访问' },
  },
]

export const routes = [
  {
    path: '/login',
    name: 'login',
    component: () => import('@/views/LoginView.vue'),
    meta: { public: true, title: '登录' },
  },
  {
    path: '/',
    component: () => import('@/layouts/ConsoleLayout.vue'),
    children: consoleRoutes,
  },
  { path: '/:pathMatch(.*)*', redirect: '/' },
]

/** Menu entries visible to a role, in order; grouped entries share a `group`. */
export function menuFor(role) {
  return consoleRoutes
    .filter((r) => r.meta?.menu && (!r.meta.roles || r.meta.roles.includes(role)))
    .sort((a, b) => (a.meta.order ?? 50) - (b.meta.order ?? 50))
    .map((r) => ({
      name: r.name,
      path: '/' + r.path,
      title: r.meta.title,
      icon: r.meta.icon,
      group: r.meta.group || null,
    }))
}
