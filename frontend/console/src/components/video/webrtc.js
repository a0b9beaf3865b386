// The console's WHIP/WHEP client: the shared one (frontend/shared/webrtc.js), same origin.
import { MediaHttpError, watchDecodedFrames, webrtcClient } from '../../../../shared/webrtc.js'

export { MediaHttpError, watchDecodedFrames }
export const { whipPublish, whepPlay, endSession } = webrtcClient()
