// 患者查询 and 患者详情: clinical staff, within their care relationships (format: views/routes.js).
import { Search } from '@element-plus/icons-vue'
import { CLINICAL_ROLES } from '@/utils/roles'

export default [
  {
    path: 'patients',
    name: 'patients',
    component: () => import('./PatientSearchView.vue'),
    title: '患者查询',
    icon: Search,
    roles: CLINICAL_ROLES,
    menu: true,
    order: 12,
  },
  { path: 'patients/:id', name: 'patient', component: () => import('./PatientView.vue'), title: '患者详情', roles: CLINICAL_ROLES },
]
