// Routes of the console's own pages (account, user administration, audit, forbidden).
// Each domain folder declares its pages the same way in views/<domain>/routes.js;
// router/routes.js concatenates them, and the menu and the router guard read `roles`
// from these entries only.
//   { path, name, component, title, icon?, roles?, menu?, group?, order? }
//   roles: who may open the page (and see its menu item); absent = every signed-in staff member
//   menu: shown in the sidebar (when the role may open it), sorted by order, grouped by group
import { User, UserFilled, Document, Odometer } from '@element-plus/icons-vue'

export default [
  { path: '', name: 'home', component: () => import('./WorkbenchView.vue'), title: '工作台', icon: Odometer, menu: true, order: 0 },
  { path: 'account', name: 'account', component: () => import('./HomeView.vue'), title: '我的账号', icon: User, menu: true, order: 200 },
  {
    path: 'admin/users',
    name: 'admin-users',
    component: () => import('./AdminUsersView.vue'),
    title: '用户管理',
    icon: UserFilled,
    roles: ['sysadmin', 'secadmin'],
    menu: true,
    order: 100,
  },
  {
    path: 'audit',
    name: 'audit',
    component: () => import('./AuditView.vue'),
    title: '审计日志',
    icon: Document,
    roles: ['auditor'],
    menu: true,
    order: 110,
  },
  { path: 'forbidden', name: 'forbidden', component: () => import('./ForbiddenView.vue'), title: '无权访问' },
]
