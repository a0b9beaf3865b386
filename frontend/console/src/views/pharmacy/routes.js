// 处方 (format: views/routes.js): the doctor writes and revises prescriptions (also from the
// patient page's 处方 tab); the pharmacist reviews them. The route names are the ones the
// pharmacy to-dos point at (apps/pharmacy/todos.py).
import { Document, Checked } from '@element-plus/icons-vue'
import { registerPatientTab } from '../patients/tabs'
import PrescriptionPatientTab from './PrescriptionPatientTab.vue'

const doctors = ['doctor']
const pharmacists = ['pharmacist']

registerPatientTab({ key: 'prescriptions', title: '处方', component: PrescriptionPatientTab, roles: doctors, order: 50 })

export default [
  {
    path: 'pharmacy/prescriptions',
    name: 'pharmacy-prescriptions',
    component: () => import('./PrescriptionsView.vue'),
    title: '我的处方',
    icon: Document,
    roles: doctors,
    menu: true,
    group: '处方',
    order: 20,
  },
  {
    path: 'pharmacy/review',
    name: 'pharmacy-review',
    component: () => import('./ReviewQueueView.vue'),
    title: '处方审核',
    icon: Checked,
    roles: pharmacists,
    menu: true,
    group: '处方',
    order: 21,
  },
]
