"""The socket envelope: frame types, close codes, error codes.

Documented for client authors in docs/realtime-protocol.md."""

from __future__ import annotations

import re
from typing import Any

import orjson


class Close:
    # Plain ints: autobahn (under daphne) rejects int subclasses as close codes.
    AUTH_FAILED = 4001  # bad credentials, wrong credential kind, or the auth deadline passed
    ORIGIN_REFUSED = 4003  # reserved: foreign browser origins are refused at the handshake (HTTP 403)
    RATE_LIMITED = 4008
    FRAME_TOO_BIG = 4009
    SESSION_ENDED = 4010  # logout, disabled, role or password change: do not reconnect
    PROTOCOL_ERROR = 4011


TOPIC_RE = re.compile(r"^([a-z_]{1,32}):([A-Za-z0-9_-]{1,64})$")
ID_MAX = 64


class ProtocolError(Exception):
    pass


def decode(text: str) -> dict[str, Any]:
    try:
        frame = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError("not JSON") from exc
    if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
        raise ProtocolError("frame must be an object with a type")
    frame_id = frame.get("id")
    # A string or an integer (never a boolean), at most 64 characters.
    if frame_id is not None and (type(frame_id) not in (str, int) or len(str(frame_id)) > ID_MAX):
        raise ProtocolError("bad id")
    return frame


def encode(frame: dict[str, Any]) -> str:
    return orjson.dumps(frame).decode()


def error(reply_to: Any, code: str, message: str) -> dict[str, Any]:
    return {"type": "error", "reply_to": reply_to, "code": code, "message": message}


# Control messages a service sends to a user's (or token's) open sockets.
CONTROL_SESSION_END = "session.end"  # close every socket (logout, disable, role change)
CONTROL_TOPIC_REVOKE = "topic.revoke"  # drop one subscription, the socket stays open


def control_topic_user(user_id: int) -> str:
    return f"ctl.user.{user_id}"


def control_topic_token(token_id: int) -> str:
    return f"ctl.token.{token_id}"
