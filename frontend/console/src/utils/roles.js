// Role codes and their Chinese labels (the server also sends role_label).
export const ROLE_LABELS = {
  patient: '患者',
  doctor: '医生',
  pharmacist: '药师',
  nurse: '护士',
  therapist: '康复治疗师',
  dietitian: '营养师',
  cs_agent: '客服',
  sysadmin: '系统管理员',
  secadmin: '安全管理员',
  auditor: '审计员',
}

export const ADMIN_ROLES = ['sysadmin', 'secadmin', 'auditor']

/** Staff roles a sysadmin may create (admin roles are refused by the server). */
export const CREATABLE_ROLES = ['doctor', 'pharmacist', 'nurse', 'therapist', 'dietitian', 'cs_agent']

/** Roles with a practising licence (licence_no / years_of_practice). */
export const CLINICAL_ROLES = ['doctor', 'pharmacist', 'nurse', 'therapist', 'dietitian']

/** All staff roles (for filters and role changes). */
export const STAFF_ROLES = [...CREATABLE_ROLES, ...ADMIN_ROLES]

export function roleLabel(role) {
  return ROLE_LABELS[role] || role || ''
}

export function roleOptions(roles) {
  return roles.map((value) => ({ value, label: roleLabel(value) }))
}
