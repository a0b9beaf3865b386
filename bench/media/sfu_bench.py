"""SFU benchmark: encoded forwarding (media_engine.Room) against stock aiortc MediaRelay.

One run measures both, the SFU in its own process (so its CPU is its own):
  - SFU process CPU per subscriber, 1 publisher at 720p 1.5 Mbps H.264 (30 fps, 2 s GOP)
  - frames delivered / frames published per subscriber
  - late-joiner first-frame time (connected -> first frame)
  - forwarding latency: publisher send -> subscriber frame, through the SFU and on a
    direct publisher->subscriber connection (the difference is what the SFU adds);
    a send time rides in an SEI NAL unit of every frame, which re-encoding drops,
    so latency is measured for encoded forwarding only.

    .venv/bin/python bench/media/sfu_bench.py [--forward 1,10,25,50] [--relay 1,2,4] [--seconds 8] [--client-procs 2]

Load subscribers are light counting peers in ``--client-procs`` worker processes
(``light_clients.py``): real ICE/DTLS/SRTP, but no jitter buffer or frame
assembly, so the load client is not what saturates first. The late joiners are
full aiortc subscribers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import multiprocessing
import os
import platform
import statistics
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaRelay

from bench.media.light_clients import SEI_UUID, ClientWorkers, read_stamp
from media_engine import MediaEngine
from media_engine.client import publish_clips, subscribe
from media_engine.codecs import h264_only_preferences
from media_engine.synthetic import Clip, encode_h264

CLK_TCK = os.sysconf("SC_CLK_TCK")


def stamp(data: bytes, _count: int) -> bytes:
    digits = str(time.time_ns()).encode()
    payload = SEI_UUID + digits
    return data + b"\x00\x00\x00\x01\x06\x05" + bytes([len(payload)]) + payload + b"\x80"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


# --- the SFU process ---------------------------------------------------------


def sfu_main(conn: Connection, mode: str) -> None:
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(_sfu(conn, mode))


async def _sfu(conn: Connection, mode: str) -> None:
    loop = asyncio.get_running_loop()
    engine = MediaEngine()
    room = engine.room("bench")
    relay = MediaRelay()
    relay_pcs: list[RTCPeerConnection] = []
    source: dict[str, Any] = {}
    while True:
        request = await loop.run_in_executor(None, conn.recv)
        op = request[0]
        if op == "stop":
            break
        try:
            if mode == "forward":
                if op == "publish":
                    answer = await room.publish("pub", request[1])
                else:
                    answer = await room.subscribe(request[1], request[2], publisher_id="pub")
            else:
                pc = RTCPeerConnection()
                relay_pcs.append(pc)
                if op == "publish":
                    t = pc.addTransceiver("video", direction="recvonly")
                    t.setCodecPreferences(h264_only_preferences())
                    await pc.setRemoteDescription(RTCSessionDescription(request[1], "offer"))
                    source["video"] = t.receiver.track
                    await pc.setLocalDescription(await pc.createAnswer())
                else:
                    t = pc.addTransceiver(relay.subscribe(source["video"]), direction="sendonly")
                    t.setCodecPreferences(h264_only_preferences())
                    await pc.setRemoteDescription(RTCSessionDescription(request[2], "offer"))
                    await pc.setLocalDescription(await pc.createAnswer())
                answer = pc.localDescription.sdp
            conn.send(("ok", answer))
        except Exception as exc:
            conn.send(("error", repr(exc)))
    await engine.close()
    for pc in relay_pcs:
        await pc.close()
    conn.send(("ok", None))


# --- the client side ----------------------------------------------------------


class SfuProcess:
    def __init__(self, mode: str) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=sfu_main, args=(child, mode), daemon=True)
        self.proc.start()
        self._lock = asyncio.Lock()

    async def call(self, *request: Any) -> Any:
        async with self._lock:
            loop = asyncio.get_running_loop()
            self.conn.send(request)
            status, value = await loop.run_in_executor(None, self.conn.recv)
        if status != "ok":
            raise RuntimeError(value)
        return value

    def cpu(self) -> float:
        assert self.proc.pid is not None
        return cpu_seconds(self.proc.pid)

    async def stop(self) -> None:
        try:
            await asyncio.wait_for(self.call("stop"), 10)
        finally:
            self.proc.join(5)
            if self.proc.is_alive():
                self.proc.kill()


async def run_mode(mode: str, counts: list[int], clip: Clip, seconds: float, client_procs: int) -> list[dict[str, Any]]:
    sfu = SfuProcess(mode)
    results = []
    pub = await publish_clips(lambda sdp: sfu.call("publish", sdp), clip, stamp=stamp if mode == "forward" else None)
    workers = ClientWorkers(client_procs)

    async def answer(name: str, sdp: str) -> str:
        return str(await sfu.call("subscribe", name, sdp))

    try:
        await asyncio.sleep(1.0)
        idle_cpu0, idle_t0 = sfu.cpu(), time.monotonic()
        await asyncio.sleep(2.0)
        idle_cpu = (sfu.cpu() - idle_cpu0) / (time.monotonic() - idle_t0)
        for n in counts:
            await workers.grow(n, answer)
            await asyncio.sleep(3.0)  # warm up: ICE, DTLS, first frames
            await workers.latencies()
            snap0, sent0 = await workers.counts(), pub.tracks["video"]._count
            cpu0, wcpu0, bcpu0, t0 = sfu.cpu(), await workers.cpu(), cpu_seconds(os.getpid()), time.monotonic()
            await asyncio.sleep(seconds)
            snap1, sent1 = await workers.counts(), pub.tracks["video"]._count
            elapsed = time.monotonic() - t0
            cpu = (sfu.cpu() - cpu0) / elapsed
            wcpu = (await workers.cpu() - wcpu0) / elapsed
            bcpu = (cpu_seconds(os.getpid()) - bcpu0) / elapsed
            latencies = await workers.latencies()
            sent = sent1 - sent0
            # Exact per subscriber, free of snapshot skew: the frames it completed between its
            # two snapshots against the frames the publisher sent in that RTP time span.
            delivered = [b[0] - a[0] for a, b in zip(snap0, snap1, strict=True)]
            expected = [((b[2] - a[2]) % 2**32) // clip.ticks_per_sample for a, b in zip(snap0, snap1, strict=True)]
            incomplete = sum(b[1] - a[1] for a, b in zip(snap0, snap1, strict=True))
            ratio = sum(delivered) / sum(expected) if sum(expected) else 0.0
            worst = min((d / e for d, e in zip(delivered, expected, strict=True) if e), default=0.0)
            row = {
                "mode": mode,
                "subscribers": n,
                "sfu_cpu_pct": round(cpu * 100, 1),
                "sfu_cpu_pct_per_sub": round((cpu - idle_cpu) * 100 / n, 2),
                "delivered_pct": round(ratio * 100, 2),
                "min_sub_delivered_pct": round(worst * 100, 2),
                "frames_sent": sent,
                "incomplete_frames": incomplete,
                "clients_cpu_pct": round(wcpu * 100, 1),
                "publisher_cpu_pct": round(bcpu * 100, 1),
                "load_avg_1m": os.getloadavg()[0],
            }
            if latencies:
                q = statistics.quantiles(latencies, n=20)
                row["latency_ms_p50"] = round(statistics.median(latencies) * 1000, 1)
                row["latency_ms_p95"] = round(q[18] * 1000, 1)
            results.append(row)
            print(json.dumps(row), flush=True)
        # Late joiner (a full aiortc subscriber in this process), with the room at its largest size.
        firsts, from_offer = [], []
        for i in range(3):
            asked = time.monotonic()
            late = await subscribe(lambda sdp, i=i: sfu.call("subscribe", f"late{i}", sdp), kinds=("video",))
            got = await late.wait_first("video", timeout=15)
            assert late.connected_at is not None and got.first_at is not None
            firsts.append((got.first_at - late.connected_at) * 1000)
            from_offer.append((got.first_at - asked) * 1000)
            await late.close()
            await asyncio.sleep(0.7)
        row = {
            "mode": mode,
            "late_joiner_first_frame_ms": [round(x) for x in firsts],
            "late_joiner_offer_to_first_frame_ms": [round(x) for x in from_offer],
        }
        results.append(row)
        print(json.dumps(row), flush=True)
    finally:
        await workers.stop()
        await pub.close()
        await sfu.stop()
    return results


async def direct_latency(clip: Clip, seconds: float) -> dict[str, Any]:
    """Publisher -> subscriber with no SFU: the path's own latency."""
    lat: list[float] = []
    pc_answer = RTCPeerConnection()
    box: dict[str, Any] = {}

    async def signal(sdp: str) -> str:
        # The "SFU" here is the subscriber itself answering the publisher.
        t = pc_answer.addTransceiver("video", direction="recvonly")
        t.setCodecPreferences(h264_only_preferences())
        await pc_answer.setRemoteDescription(RTCSessionDescription(sdp, "offer"))
        from media_engine.receiver import use_encoded

        box["track"] = use_encoded(t.receiver)
        await pc_answer.setLocalDescription(await pc_answer.createAnswer())
        return str(pc_answer.localDescription.sdp)

    pub = await publish_clips(signal, clip, stamp=stamp)
    try:
        deadline = time.monotonic() + 2 + seconds
        while time.monotonic() < deadline:
            packet = await asyncio.wait_for(box["track"].recv(), 5)
            sent = read_stamp(bytes(packet))
            if sent is not None and time.monotonic() > deadline - seconds:
                lat.append(time.time() - sent)
    finally:
        await pub.close()
        await pc_answer.close()
    return {"mode": "direct", "latency_ms_p50": round(statistics.median(lat) * 1000, 1)}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--forward", default="1,10,25,50")
    parser.add_argument("--relay", default="1,2,3")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--client-procs", type=int, default=2, help="worker processes holding the load subscribers")
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    clip = encode_h264(width=1280, height=720, fps=30, seconds=4.0, bitrate=1_500_000, gop_frames=60, noise=10)
    kbps = sum(len(s.data) for s in clip.samples) * 8 / 4 / 1000
    machine = {
        "cpu": next(
            (
                ln.split(":", 1)[1].strip()
                for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if "model name" in ln
            ),
            platform.processor(),
        ),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "clip_kbps": round(kbps),
    }
    print(json.dumps(machine), flush=True)
    rows: list[dict[str, Any]] = [machine]
    rows.append(await direct_latency(clip, 4.0))
    print(json.dumps(rows[-1]), flush=True)
    for mode, spec in (("forward", args.forward), ("relay", args.relay)):
        if spec:
            rows += await run_mode(mode, [int(x) for x in spec.split(",")], clip, args.seconds, args.client_procs)
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    asyncio.run(main())
