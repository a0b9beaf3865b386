from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from whitenoise.middleware import WhiteNoiseMiddleware

from .context import RequestMeta, reset_request_meta, set_request_meta
from .errors import Invalid, error_response

_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def client_ip(request: HttpRequest) -> str:
    # Behind the proxy the real address arrives in X-Forwarded-For; trusting it is
    # a deployment decision (TRUST_X_FORWARDED_FOR), never the default.
    if getattr(settings, "TRUST_X_FORWARDED_FOR", False):
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            return forwarded.split(",")[0].strip()[:64]
    return str(request.META.get("REMOTE_ADDR", ""))[:64]


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _REQUEST_ID_RE.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]
        token = set_request_meta(RequestMeta(ip=client_ip(request), request_id=request_id))
        try:
            response = self.get_response(request)
        finally:
            reset_request_meta(token)
        response["X-Request-ID"] = request_id
        return response


CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self' ws: wss:; "
    "media-src 'self' blob:; object-src 'none'; base-uri 'self'; frame-ancestors 'none'; form-action 'self'"
)


_DIGITS = re.compile(r"^-?\d+$")
INT64_MAX = 2**63 - 1


def _too_big(value: str) -> bool:
    return len(value) >= 19 and bool(_DIGITS.match(value)) and abs(int(value)) > INT64_MAX


class NumberRangeMiddleware:
    """A number in an API path or query beyond what the database holds (bigint) is
    refused with 422 before routing, whatever the route (ids, seqs, offsets)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith("/api/") and (
            any(_too_big(part) for part in request.path.split("/"))
            or any(_too_big(v) for values in request.GET.lists() for v in values[1])
        ):
            return error_response(Invalid("数值超出允许范围"))
        return self.get_response(request)


class SecurityHeadersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", CSP)
        response.setdefault("Permissions-Policy", "camera=(self), microphone=(self), geolocation=()")
        if request.path.startswith("/api/"):
            # Patient data must not sit in shared or browser caches.
            response["Cache-Control"] = "no-store"
        return response


class FrontendFilesMiddleware(WhiteNoiseMiddleware):
    """Serves the built patient H5 app at /h5/ and the console at /console/."""

    def __init__(
        self, get_response: Callable[[HttpRequest], HttpResponse] | None = None, settings: object = None
    ) -> None:
        super().__init__(get_response)
        from django.conf import settings as django_settings

        for prefix, root in django_settings.FRONTEND_DIRS.items():
            if Path(root).is_dir():
                self.add_files(str(root), prefix=f"{prefix}/")
