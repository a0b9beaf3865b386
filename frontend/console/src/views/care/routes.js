// 我的接诊: clinical staff (format: views/routes.js).
import { FirstAidKit } from '@element-plus/icons-vue'
import { CLINICAL_ROLES } from '@/utils/roles'

export default [
  {
    path: 'care',
    name: 'care',
    component: () => import('./CareRelationshipsView.vue'),
    title: '我的接诊',
    icon: FirstAidKit,
    roles: CLINICAL_ROLES,
    menu: true,
    order: 15,
  },
]
