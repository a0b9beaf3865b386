// 消息: clinical staff and customer service (format: views/routes.js).
import { ChatDotRound } from '@element-plus/icons-vue'
import { CLINICAL_ROLES } from '@/utils/roles'

export default [
  {
    path: 'im',
    name: 'im',
    component: () => import('./ImView.vue'),
    title: '消息',
    icon: ChatDotRound,
    roles: [...CLINICAL_ROLES, 'cs_agent'],
    menu: true,
    order: 10,
  },
]
