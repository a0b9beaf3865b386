// 配送 (format: views/routes.js): pharmacists and system administrators (apps/delivery
// STAFF_ROLES); the route name is the one the delivery to-dos point at.
import { Van } from '@element-plus/icons-vue'

export default [
  {
    path: 'delivery/shipments',
    name: 'delivery-shipments',
    component: () => import('./ShipmentsView.vue'),
    title: '配送管理',
    icon: Van,
    roles: ['pharmacist', 'sysadmin'],
    menu: true,
    order: 70,
  },
]
