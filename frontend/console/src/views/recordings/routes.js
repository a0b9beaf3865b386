// 问诊录像 (format: views/routes.js). Replay is for clinical staff who took part in the
// session (recordings.services.may_replay).
import { VideoCamera } from '@element-plus/icons-vue'
import { CLINICAL_ROLES } from '@/utils/roles'

export default [
  {
    path: 'recordings',
    name: 'recordings',
    component: () => import('./RecordingsView.vue'),
    title: '问诊录像',
    icon: VideoCamera,
    roles: CLINICAL_ROLES,
    menu: true,
    order: 50,
  },
  // --- media: a video room on its own page (components/video/VisitVideo.vue; issue 13) ---
  {
    path: 'video/:roomId',
    name: 'video-room',
    component: () => import('@/components/video/VideoRoomPage.vue'),
    title: '视频问诊',
    roles: CLINICAL_ROLES,
  },
  // --- end media ---
]
