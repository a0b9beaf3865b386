// WHIP（推流）/ WHEP（拉流）客户端：整份 SDP 一次提交（服务端 aiortc 不支持增量 ICE），
// 以服务器签发的房间授权（Bearer）访问 /media/whip|whep/<room>。仅 H5 可用。
import { getOrigin } from '../../utils/config.js'

export class MediaHttpError extends Error {
  constructor(status, code, message) {
    super(message)
    this.status = status
    this.code = code
  }
}

function waitIceComplete(pc, timeoutMs = 3000) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve()
  return new Promise((resolve) => {
    const timer = setTimeout(done, timeoutMs)
    function done() {
      clearTimeout(timer)
      pc.removeEventListener('icegatheringstatechange', check)
      resolve()
    }
    function check() {
      if (pc.iceGatheringState === 'complete') done()
    }
    pc.addEventListener('icegatheringstatechange', check)
  })
}

async function exchange(pc, url, token) {
  await pc.setLocalDescription(await pc.createOffer())
  await waitIceComplete(pc)
  const res = await fetch(getOrigin() + url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/sdp', Authorization: `Bearer ${token}` },
    body: pc.localDescription.sdp,
  })
  if (res.status !== 201) {
    let body = {}
    try {
      body = await res.json()
    } catch (e) {
      body = {}
    }
    throw new MediaHttpError(res.status, body.code || `http_${res.status}`, body.message || '音视频服务暂不可用')
  }
  const answer = await res.text()
  await pc.setRemoteDescription({ type: 'answer', sdp: answer })
  return res.headers.get('Location')
}

// 推流：返回 { pc, location }
export async function whipPublish(url, token, stream) {
  const pc = new RTCPeerConnection()
  for (const track of stream.getTracks()) pc.addTransceiver(track, { direction: 'sendonly', streams: [stream] })
  try {
    const location = await exchange(pc, url, token)
    return { pc, location }
  } catch (e) {
    pc.close()
    throw e
  }
}

// 拉流：onTrack(track) 每收到一条轨道调用一次；返回 { pc, location }
export async function whepPlay(url, token, onTrack) {
  const pc = new RTCPeerConnection()
  pc.addTransceiver('video', { direction: 'recvonly' })
  pc.addTransceiver('audio', { direction: 'recvonly' })
  pc.addEventListener('track', (ev) => onTrack(ev.track))
  try {
    const location = await exchange(pc, url, token)
    return { pc, location }
  } catch (e) {
    pc.close()
    throw e
  }
}

export async function endSession(location, token) {
  if (!location) return
  try {
    await fetch(getOrigin() + location, { method: 'DELETE', headers: { Authorization: `Bearer ${token}` } })
  } catch (e) {
    // 离开房间时网络已断：服务端在连接失败后自行清理
  }
}

// 切换摄像头：替换推流连接里视频发送端的轨道，无需重新协商
export async function replaceVideoTrack(pc, track) {
  const sender = pc.getSenders().find((s) => s.track && s.track.kind === 'video')
  if (sender) await sender.replaceTrack(track)
}
