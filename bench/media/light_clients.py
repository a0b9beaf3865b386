"""Light load subscribers for the SFU benchmark, in worker processes.

Each subscriber is a real aiortc peer connection (ICE, DTLS, SRTP, RTCP
receiver reports), but its video receiver's ``_handle_rtp_packet`` is replaced
by a counter: no jitter buffer, no depacketizing, no frame assembly, no NACK.
A frame counts as delivered when every packet from the one after the previous
marker up to its marker bit arrived in sequence (so a lost packet loses its
frame: stricter than a NACKing client). The send time in the frame's SEI rides
in its last (marker) packet, so latency is read there too.

Workers are driven by the bench process over a pipe; their offers are relayed
to the SFU by the bench process, so the SFU code is the one under test.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from multiprocessing.connection import Connection
from typing import Any

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.rtp import RtpPacket

SEI_UUID = bytes(range(0x41, 0x51))


def read_stamp(data: bytes) -> float | None:
    i = data.rfind(SEI_UUID)
    if i < 0:
        return None
    digits = data[i + 16 : i + 16 + 19]
    return int(digits) / 1e9 if digits.isdigit() else None


class FrameCounter:
    def __init__(self, payload_type: int, *, latency: bool) -> None:
        self.payload_type = payload_type
        self.latency = latency
        self.packets = 0
        self.frames = 0
        self.incomplete = 0
        self.latencies: list[float] = []
        self.last_marker_ts = 0
        self._last_seq: int | None = None
        self._broken = True  # joined mid-frame

    async def handle(self, packet: RtpPacket, arrival_time_ms: int = 0) -> None:
        if packet.payload_type != self.payload_type:
            return  # RTX (never asked for: no NACKs)
        self.packets += 1
        seq = packet.sequence_number
        if self._last_seq is not None and seq != (self._last_seq + 1) & 0xFFFF:
            self._broken = True
        self._last_seq = seq
        if packet.marker:
            self.last_marker_ts = packet.timestamp
            if self._broken:
                self.incomplete += 1
            else:
                self.frames += 1
                if self.latency:
                    sent = read_stamp(packet.payload)
                    if sent is not None:
                        self.latencies.append(time.time() - sent)
            self._broken = False


async def _worker(conn: Connection, index: int) -> None:
    loop = asyncio.get_running_loop()
    pcs: list[RTCPeerConnection] = []
    counters: list[FrameCounter] = []
    while True:
        request = await loop.run_in_executor(None, conn.recv)
        op = request[0]
        if op == "add":
            _, names, latency_slots = request
            for name in names:
                pc = RTCPeerConnection()
                t = pc.addTransceiver("video", direction="recvonly")
                await pc.setLocalDescription(await pc.createOffer())
                conn.send(("offer", name, pc.localDescription.sdp))
                answer = await loop.run_in_executor(None, conn.recv)
                await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
                codecs = getattr(t, "_codecs", [])
                counter = FrameCounter(codecs[0].payloadType, latency=len(counters) < latency_slots)
                t.receiver._handle_rtp_packet = counter.handle  # type: ignore[method-assign]
                pcs.append(pc)
                counters.append(counter)
            conn.send(("added", len(pcs)))
        elif op == "counts":
            # One snapshot per counter: frames so far and the RTP time of the last frame end.
            conn.send(("counts", [(c.frames, c.incomplete, c.last_marker_ts) for c in counters]))
        elif op == "latencies":
            lat = [x for c in counters for x in c.latencies]
            for c in counters:
                c.latencies.clear()
            conn.send(("latencies", lat))
        elif op == "cpu":
            t = os.times()
            conn.send(("cpu", t.user + t.system))
        elif op == "stop":
            for pc in pcs:
                await pc.close()
            conn.send(("stopped", None))
            return


def worker_main(conn: Connection, index: int) -> None:
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(_worker(conn, index))


class ClientWorkers:
    """``procs`` worker processes holding the load subscribers, spread evenly."""

    def __init__(self, procs: int) -> None:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        self.conns: list[Connection] = []
        self.procs = []
        self.sizes = [0] * procs
        for i in range(procs):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=worker_main, args=(child, i), daemon=True)
            proc.start()
            self.conns.append(parent)
            self.procs.append(proc)
        self._lock = asyncio.Lock()

    async def _ask(self, i: int, request: tuple[Any, ...]) -> Any:
        loop = asyncio.get_running_loop()
        self.conns[i].send(request)
        return await loop.run_in_executor(None, self.conns[i].recv)

    async def grow(self, total: int, answer: Any, *, latency_slots: int = 2) -> None:
        """Add subscribers until there are ``total``; ``answer(name, sdp)`` signals through the SFU."""
        loop = asyncio.get_running_loop()
        async with self._lock:
            while sum(self.sizes) < total:
                i = self.sizes.index(min(self.sizes))
                name = f"w{i}s{self.sizes[i]}"
                self.conns[i].send(("add", [name], latency_slots))
                while True:
                    message = await loop.run_in_executor(None, self.conns[i].recv)
                    if message[0] == "offer":
                        self.conns[i].send(await answer(message[1], message[2]))
                    else:
                        self.sizes[i] = message[1]
                        break

    async def counts(self) -> list[tuple[int, int, int]]:
        """Per subscriber: (complete frames, incomplete frames, RTP timestamp of the last marker)."""
        out: list[tuple[int, int, int]] = []
        for i in range(len(self.conns)):
            out += [tuple(x) for x in (await self._ask(i, ("counts",)))[1]]
        return out

    async def latencies(self) -> list[float]:
        out: list[float] = []
        for i in range(len(self.conns)):
            out += (await self._ask(i, ("latencies",)))[1]
        return out

    async def cpu(self) -> float:
        return sum([(await self._ask(i, ("cpu",)))[1] for i in range(len(self.conns))])

    async def stop(self) -> None:
        for i in range(len(self.conns)):
            try:
                await asyncio.wait_for(self._ask(i, ("stop",)), 20)
            except Exception:
                pass
        for proc in self.procs:
            proc.join(5)
            if proc.is_alive():
                proc.kill()
