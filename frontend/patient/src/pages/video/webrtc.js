// 患者端（H5）的 WHIP/WHEP 客户端：共用 frontend/shared/webrtc.js，地址取自应用配置。仅 H5 可用。
import { getOrigin } from '../../utils/config.js'
import { MediaHttpError, replaceVideoTrack, watchDecodedFrames, webrtcClient } from '../../../../shared/webrtc.js'

export { MediaHttpError, replaceVideoTrack, watchDecodedFrames }
export const { whipPublish, whepPlay, endSession } = webrtcClient(getOrigin)
