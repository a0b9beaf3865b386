"""The baseline: a minimal plain-``websockets`` server speaking the same frames
as the hub (auth, ping, subscribe, im.send, im.signal, im.sync) with no
database, no authorisation and no framework: the limit for Python here.

    python bench/hub/baseline_server.py PORT
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import sys
from collections import defaultdict
from typing import Any

import orjson
import websockets

topics: dict[str, set[Any]] = defaultdict(set)
seqs: dict[int, itertools.count[int]] = defaultdict(lambda: itertools.count(1))


async def handler(ws: Any) -> None:
    mine: set[str] = set()
    try:
        async for raw in ws:
            frame = orjson.loads(raw)
            kind = frame["type"]
            fid = frame.get("id")
            if kind == "auth":
                await ws.send(orjson.dumps({"type": "auth.ok", "reply_to": fid, "heartbeat": 25}).decode())
            elif kind == "ping":
                await ws.send(orjson.dumps({"type": "pong", "reply_to": fid}).decode())
            elif kind == "subscribe":
                topics[frame["topic"]].add(ws)
                mine.add(frame["topic"])
                await ws.send(orjson.dumps({"type": "reply", "reply_to": fid, "ok": True}).decode())
            elif kind in ("im.send", "im.signal"):
                cid = frame["conversation"]
                topic = f"conv:{cid}"
                if kind == "im.send":
                    seq = next(seqs[cid])
                    data = {
                        "conversation": cid,
                        "seq": seq,
                        "body": frame["body"],
                        "client_msg_id": frame["client_msg_id"],
                    }
                    event = "im.message"
                else:
                    data = {"conversation": cid, "data": frame["data"]}
                    event = "im.signal"
                text = orjson.dumps({"type": "event", "topic": topic, "event": event, "data": data}).decode()
                websockets.broadcast([s for s in topics[topic] if s is not ws], text)
                if fid is not None:
                    reply = {"type": "reply", "reply_to": fid, "ok": True, "data": data}
                    await ws.send(orjson.dumps(reply).decode())
            elif kind == "im.sync":
                await ws.send(
                    orjson.dumps(
                        {"type": "reply", "reply_to": fid, "ok": True, "data": {"items": [], "has_more": False}}
                    ).decode()
                )
    except websockets.ConnectionClosed:
        pass
    finally:
        for topic in mine:
            topics[topic].discard(ws)


async def main(port: int) -> None:
    gc.collect()
    gc.freeze()
    async with websockets.serve(handler, "127.0.0.1", port, max_size=65536, ping_interval=None):
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
