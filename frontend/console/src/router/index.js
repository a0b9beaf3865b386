import { createRouter, createWebHashHistory } from 'vue-router'
import { routes, mayOpen } from './routes'
import { useAuthStore } from '@/stores/auth'

const APP_TITLE = '互联网医院 · 管理控制台'

const router = createRouter({
  history: createWebHashHistory(),
  routes,
  scrollBehavior: () => ({ top: 0 }),
})

router.beforeEach(async (to) => {
  const auth = useAuthStore()
  if (to.meta.public) {
    if (to.name === 'login' && auth.isLoggedIn && auth.user) return { path: '/' }
    return true
  }
  if (!auth.isLoggedIn) {
    return { name: 'login', query: to.fullPath !== '/' ? { redirect: to.fullPath } : {} }
  }
  if (!auth.user) {
    try {
      await auth.fetchMe()
    } catch {
      auth.reset()
      return { name: 'login', query: to.fullPath !== '/' ? { redirect: to.fullPath } : {} }
    }
  }
  // every matched record's roles (declared in views/<domain>/routes.js) must allow the user
  const allowed = to.matched.every((r) => mayOpen(r, auth.role))
  if (!allowed) return { name: 'forbidden' }
  return true
})

router.afterEach((to) => {
  document.title = to.meta.title ? `${to.meta.title} - ${APP_TITLE}` : APP_TITLE
})

export default router
