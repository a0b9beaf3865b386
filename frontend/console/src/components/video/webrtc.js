// The console's WHIP/WHEP client: the shared one (frontend/shared/webrtc.js), same origin.
import { MediaHttpError, webrtcClient } from '../../../../shared/webrtc.js'

export { MediaHttpError }
export const { whipPublish, whepPlay, endSession } = webrtcClient()
