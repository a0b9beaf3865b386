// 订单与退款 (format: views/routes.js). The roles mirror the server's settings
// (COMMERCE_STAFF_ROLES, COMMERCE_REFUND_ROLES + COMMERCE_REFUND_SECOND_ROLES,
// COMMERCE_RECONCILE_ROLES); the server still checks every request.
import { Tickets, RefreshLeft, DataBoard } from '@element-plus/icons-vue'

const staff = ['cs_agent', 'sysadmin']
const refunders = ['cs_agent', 'sysadmin']
const reconcilers = ['sysadmin', 'auditor']

export default [
  {
    path: 'commerce/orders',
    name: 'commerce-orders',
    component: () => import('./OrdersView.vue'),
    title: '订单查询',
    icon: Tickets,
    roles: staff,
    menu: true,
    group: '订单与支付',
    order: 60,
  },
  {
    path: 'commerce/refunds',
    name: 'commerce-refunds',
    component: () => import('./RefundsView.vue'),
    title: '退款审核',
    icon: RefreshLeft,
    roles: refunders,
    menu: true,
    group: '订单与支付',
    order: 61,
  },
  {
    path: 'commerce/reconciliation',
    name: 'commerce-reconciliation',
    component: () => import('./ReconciliationView.vue'),
    title: '对账报告',
    icon: DataBoard,
    roles: reconcilers,
    menu: true,
    group: '订单与支付',
    order: 62,
  },
]
