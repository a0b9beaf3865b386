// Console routes, gathered from the domain folders. Each folder declares its pages once,
// with their roles, in views/<domain>/routes.js (format in views/routes.js); this file
// concatenates them into the layout's children. The sidebar menu (menuFor) and the guards
// (router/index.js, the login redirect) read the roles from those declarations through
// mayOpen(), so no role list is repeated here. A new domain adds its file to DOMAINS.
import corePages from '@/views/routes'
import imPages from '@/views/im/routes'
import carePages from '@/views/care/routes'
import patientPages from '@/views/patients/routes'
import psychPages from '@/views/psych/routes'
import recordingsPages from '@/views/recordings/routes'
import pharmacyPages from '@/views/pharmacy/routes'
import commercePages from '@/views/commerce/routes'
import deliveryPages from '@/views/delivery/routes'
import consultationPages from '@/views/consultations/routes'

const DOMAINS = [corePages, imPages, carePages, patientPages, psychPages, recordingsPages, pharmacyPages, commercePages, deliveryPages, consultationPages]

/** A domain entry {path, name, component, title, icon, roles, menu, group, order} -> route record. */
function toRecord({ path, name, component, title, icon, roles, menu, group, order, ...rest }) {
  return { path, name, component, ...rest, meta: { title, icon, roles, menu: !!menu, group, order } }
}

export const consoleRoutes = DOMAINS.flat().map(toRecord)

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

/** May `role` open this route record (no roles declared: every signed-in staff member)? */
export function mayOpen(record, role) {
  const roles = record && record.meta && record.meta.roles
  return !roles || roles.includes(role)
}

/** May `role` open a resolved route (every matched record must allow it)? */
export function mayOpenRoute(route, role) {
  return route.matched.length > 0 && route.matched.every((r) => mayOpen(r, role))
}

/** Menu entries visible to a role, in order; grouped entries share a `group`. */
export function menuFor(role) {
  return consoleRoutes
    .filter((r) => r.meta.menu && mayOpen(r, role))
    .sort((a, b) => (a.meta.order ?? 50) - (b.meta.order ?? 50))
    .map((r) => ({
      name: r.name,
      path: '/' + r.path,
      title: r.meta.title,
      icon: r.meta.icon,
      group: r.meta.group || null,
    }))
}
