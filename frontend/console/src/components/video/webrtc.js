// WHIP（推流）/ WHEP（拉流）：整份 SDP 一次提交（服务端 aiortc 不支持增量 ICE），
// 以房间授权（Bearer）访问 /media/whip|whep/<room>；结束时 DELETE 其 Location。
export class MediaHttpError extends Error {
  constructor(status, code, message) {
    super(message)
    this.status = status
    this.code = code
  }
}

function iceComplete(pc, timeoutMs = 3000) {
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
  await iceComplete(pc)
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/sdp', Authorization: `Bearer ${token}` },
    body: pc.localDescription.sdp,
  })
  if (res.status !== 201) {
    const body = await res.json().catch(() => ({}))
    throw new MediaHttpError(res.status, body.code || `http_${res.status}`, body.message || '音视频服务暂不可用')
  }
  await pc.setRemoteDescription({ type: 'answer', sdp: await res.text() })
  return res.headers.get('Location')
}

export async function whipPublish(url, token, stream) {
  const pc = new RTCPeerConnection()
  for (const track of stream.getTracks()) pc.addTransceiver(track, { direction: 'sendonly', streams: [stream] })
  try {
    return { pc, location: await exchange(pc, url, token) }
  } catch (e) {
    pc.close()
    throw e
  }
}

export async function whepPlay(url, token, onTrack) {
  const pc = new RTCPeerConnection()
  pc.addTransceiver('video', { direction: 'recvonly' })
  pc.addTransceiver('audio', { direction: 'recvonly' })
  pc.addEventListener('track', (ev) => onTrack(ev.track))
  try {
    return { pc, location: await exchange(pc, url, token) }
  } catch (e) {
    pc.close()
    throw e
  }
}

export function endSession(location, token) {
  if (!location) return
  fetch(location, { method: 'DELETE', headers: { Authorization: `Bearer ${token}` }, keepalive: true }).catch(() => {})
}
