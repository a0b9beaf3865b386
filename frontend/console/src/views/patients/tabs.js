// Tabs of the patient page (患者详情). The page itself shows the profile (概览); each module
// adds the tab it owns from its own routes.js:
//   registerPatientTab({ key, title, component, roles?, order? })
// component receives the prop `patient` (the masked profile from GET /care/patients/{id}).
import { markRaw, reactive } from 'vue'

export const patientTabs = reactive([])

export function registerPatientTab(tab) {
  const i = patientTabs.findIndex((t) => t.key === tab.key)
  const entry = { order: 100, ...tab, component: markRaw(tab.component) }
  if (i >= 0) patientTabs.splice(i, 1, entry)
  else patientTabs.push(entry)
  patientTabs.sort((a, b) => a.order - b.order)
}

export function tabsFor(role) {
  return patientTabs.filter((t) => !t.roles || t.roles.includes(role))
}
