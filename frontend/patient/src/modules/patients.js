// 就诊人管理：本人及家庭成员
export default {
  key: 'patients',
  entry: {
    title: '就诊人',
    desc: '本人及家人的就诊信息',
    icon: '人',
    tone: 'teal',
    page: '/pages/patients/list',
  },
}
