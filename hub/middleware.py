from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from whitenoise.middleware import WhiteNoiseMiddleware

from .context import RequestMeta, reset_request_meta, set_request_meta

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
