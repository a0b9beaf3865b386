"""Adapters to parties outside the hospital: mini-program login.

SMS (login codes included) goes through the notification outbox
(``apps.notifications``: ``notification_enqueue`` and its SMS adapter).

The sandbox works offline and behaves like the real one: it accepts only
login codes it signed, once, within five minutes, and answers with the same
error codes as WeChat's ``jscode2session`` (40029 invalid, 40163 used)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings
from django.core.cache import cache

from hub.outside import load

log = logging.getLogger(__name__)


class MiniProgramLoginError(Exception):
    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"{errcode} {errmsg}")
        self.errcode = errcode


class MiniProgramUnavailable(Exception):
    """This deployment has no mini-program login (``DisabledMiniProgram``)."""


@dataclass(frozen=True)
class MiniProgramSession:
    openid: str
    unionid: str = ""


class MiniProgramAdapter(Protocol):
    def exchange(self, *, platform: str, code: str) -> MiniProgramSession: ...


class DisabledMiniProgram:
    """A deployment without mini-program login (patients sign in with SMS codes):
    every exchange is refused as unavailable. Not a sandbox: production may run it."""

    def exchange(self, *, platform: str, code: str) -> MiniProgramSession:
        raise MiniProgramUnavailable(platform)


class SandboxMiniProgram:
    """Sandbox of WeChat ``jscode2session`` / Alipay ``system.oauth.token``."""

    sandbox = True  # refused in production (hub.outside)

    CODE_TTL = 300

    @staticmethod
    def _sign(payload: str) -> str:
        return hmac.new(settings.SANDBOX_SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest()[:32]

    @classmethod
    def issue_code(cls, *, platform: str, openid: str, now: float | None = None) -> str:
        """What ``uni.login`` would return on the device (used by the demo and tests)."""
        issued = int(now if now is not None else time.time())
        nonce = secrets.token_hex(4)
        payload = base64.urlsafe_b64encode(f"{platform}:{openid}:{issued}:{nonce}".encode()).decode().rstrip("=")
        return f"sbx.{payload}.{cls._sign(payload)}"

    def exchange(self, *, platform: str, code: str) -> MiniProgramSession:
        try:
            prefix, payload, sig = code.split(".")
            if prefix != "sbx" or not hmac.compare_digest(sig, self._sign(payload)):
                raise ValueError
            code_platform, openid, issued, _nonce = (
                base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode().split(":")
            )
        except (ValueError, UnicodeDecodeError) as exc:
            raise MiniProgramLoginError(40029, "invalid code") from exc
        if code_platform != platform or time.time() - int(issued) > self.CODE_TTL:
            raise MiniProgramLoginError(40029, "invalid code")
        # Real codes are single-use.
        if not cache.add(f"sbx-mp-code:{hashlib.sha256(code.encode()).hexdigest()}", 1, self.CODE_TTL):
            raise MiniProgramLoginError(40163, "code been used")
        return MiniProgramSession(openid=openid)


def miniprogram_adapter() -> MiniProgramAdapter:
    adapter: MiniProgramAdapter = load(settings.MINIPROGRAM_ADAPTER, label="MINIPROGRAM_ADAPTER")()
    return adapter
