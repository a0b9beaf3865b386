// WHIP（推流）/ WHEP（拉流）客户端，患者端 H5 与工作台共用：整份 SDP 一次提交（服务端 aiortc
// 不支持增量 ICE），以服务器签发的房间授权（Bearer）访问 /media/whip|whep/<room>；结束时 DELETE 其 Location。
// origin() 给出服务器地址（患者端 H5 可能与页面不同源；工作台为同源 ''）。
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

export function webrtcClient(origin = () => '') {
  async function exchange(pc, url, token) {
    await pc.setLocalDescription(await pc.createOffer())
    await iceComplete(pc)
    const res = await fetch(origin() + url, {
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

  async function negotiated(pc, url, token) {
    try {
      return { pc, location: await exchange(pc, url, token) }
    } catch (e) {
      pc.close()
      throw e
    }
  }

  // 推流：返回 { pc, location }
  function whipPublish(url, token, stream) {
    const pc = new RTCPeerConnection()
    for (const track of stream.getTracks()) pc.addTransceiver(track, { direction: 'sendonly', streams: [stream] })
    return negotiated(pc, url, token)
  }

  // 拉流：onTrack(track) 每收到一条轨道调用一次；返回 { pc, location }
  function whepPlay(url, token, onTrack) {
    const pc = new RTCPeerConnection()
    pc.addTransceiver('video', { direction: 'recvonly' })
    pc.addTransceiver('audio', { direction: 'recvonly' })
    pc.addEventListener('track', (ev) => onTrack(ev.track))
    return negotiated(pc, url, token)
  }

  // 结束会话；离开页面时也能送达（keepalive）。网络已断时服务端在连接失败后自行清理。
  function endSession(location, token) {
    if (!location) return Promise.resolve()
    return fetch(origin() + location, { method: 'DELETE', headers: { Authorization: `Bearer ${token}` }, keepalive: true })
      .then(() => undefined)
      .catch(() => undefined)
  }

  return { whipPublish, whepPlay, endSession }
}

// 切换摄像头：替换推流连接里视频发送端的轨道，无需重新协商
export async function replaceVideoTrack(pc, track) {
  const sender = pc.getSenders().find((s) => s.track && s.track.kind === 'video')
  if (sender) await sender.replaceTrack(track)
}

// 对方离开或断网时播放连接仍在（服务端保留订阅，对方重新进入后自动续上）：以解码帧数判断画面是否停住。
// 每秒读一次统计：连续 3 秒没有新解码的帧调用 onStall()，之后又有帧时调用 onResume()；
// alive() 为假（已离开、换了连接）时停止。返回停止函数。
export function watchDecodedFrames(pc, { alive, onStall, onResume }) {
  let last = -1
  let still = 0
  const timer = setInterval(async () => {
    if (!alive()) {
      clearInterval(timer)
      return
    }
    let frames = 0
    try {
      const stats = await pc.getStats()
      stats.forEach((r) => {
        if (r.type === 'inbound-rtp' && r.kind === 'video') frames += r.framesDecoded || 0
      })
    } catch (e) {
      return
    }
    still = frames === last ? still + 1 : 0
    last = frames
    if (still >= 3) onStall()
    else if (still === 0 && frames > 0) onResume()
  }, 1000)
  return () => clearInterval(timer)
}
