import { createApp } from 'vue'
import { createPinia } from 'pinia'
import ElementPlus, { ElMessage } from 'element-plus'
import zhCn from 'element-plus/es/locale/lang/zh-cn'
import 'element-plus/dist/index.css'
import './styles.css'
import '@/utils/time'

import App from './App.vue'
import router from './router'
import { onUnauthenticated } from './api'
import { realtime } from './realtime'
import { useAuthStore } from './stores/auth'

const app = createApp(App)
const pinia = createPinia()
app.use(pinia)
app.use(router)
app.use(ElementPlus, { locale: zhCn })

function backToLogin() {
  const current = router.currentRoute.value
  if (current.name === 'login') return
  const redirect = current.fullPath && current.fullPath !== '/' ? current.fullPath : undefined
  router.replace({ name: 'login', query: redirect ? { redirect } : {} })
}

// 401 auth.unauthenticated from any API call: token already cleared by the API module.
onUnauthenticated(() => {
  useAuthStore(pinia).reset()
  backToLogin()
})

// WebSocket closed with 4010 (logout elsewhere / disabled / role changed): no reconnect.
realtime.onSessionEnded = () => {
  useAuthStore(pinia).reset()
  ElMessage.warning({ message: '会话已结束，请重新登录', grouping: true })
  backToLogin()
}

app.mount('#app')
