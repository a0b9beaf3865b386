"""The HTTP the adapters speak, injectable: a base URL and a transport.

The repository has no HTTP client among its runtime dependencies (httpx is not
installed), so the default transport is the standard library's ``urllib`` with
redirects refused and a timeout. Tests pass a transport that stands in for the
outside gateway, or talk to the sandbox gateway over real HTTP (the live server)."""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from .errors import PaymentsCode, PaymentsError


class Headers(dict[str, str]):
    """Response headers looked up case-insensitively (keys stored lower-case)."""

    def __init__(self, items: Mapping[str, str] | None = None) -> None:
        super().__init__({k.lower(): v for k, v in (items or {}).items()})

    def get_ci(self, name: str, default: str = "") -> str:
        return self.get(name.lower(), default)


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""


class Transport(Protocol):
    def request(
        self, method: str, url: str, *, headers: Mapping[str, str], body: bytes | None, timeout: float
    ) -> HttpAnswer:
        """Send one request; raise ``PaymentsError(GATEWAY_UNAVAILABLE)`` when nothing came back."""
        ...


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


class UrllibTransport:
    """Plain HTTP(S) through ``urllib``: no redirects, no proxies from the environment."""

    def __init__(self) -> None:
        self._opener = urllib.request.build_opener(_NoRedirect(), urllib.request.ProxyHandler({}))

    def request(
        self, method: str, url: str, *, headers: Mapping[str, str], body: bytes | None, timeout: float
    ) -> HttpAnswer:
        if not url.startswith(("https://", "http://")):
            raise PaymentsError(PaymentsCode.GATEWAY_UNAVAILABLE, reason="bad_url")
        req = urllib.request.Request(url, data=body, method=method, headers=dict(headers))  # noqa: S310
        try:
            with self._opener.open(req, timeout=timeout) as resp:
                return HttpAnswer(resp.status, Headers(dict(resp.headers.items())), resp.read())
        except urllib.error.HTTPError as exc:
            return HttpAnswer(exc.code, Headers(dict(exc.headers.items())), exc.read())
        except TimeoutError as exc:
            raise PaymentsError(PaymentsCode.GATEWAY_UNAVAILABLE, reason="timeout") from exc
        except urllib.error.URLError as exc:
            reason = "timeout" if isinstance(exc.reason, TimeoutError) else "connection"
            raise PaymentsError(PaymentsCode.GATEWAY_UNAVAILABLE, reason=reason) from exc
        except (OSError, http.client.HTTPException) as exc:  # reset, broken pipe, a truncated answer
            raise PaymentsError(PaymentsCode.GATEWAY_UNAVAILABLE, reason="connection") from exc
