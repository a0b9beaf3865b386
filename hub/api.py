"""The one NinjaAPI: routers per app, one error shape, auth on every route."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import DatabaseError, DataError, InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from apps.accounts.api import admin_router, auth_router
from apps.accounts.api import router as accounts_router
from apps.audit.api import router as audit_router
from apps.care_team.api import router as care_router
from apps.commerce.api import router as commerce_router
from apps.consultations.api import router as consultations_router
from apps.consultations.api_clinical import router as consult_clinical_router
from apps.delivery.api import router as delivery_router
from apps.im.api import router as im_router
from apps.media.api import router as media_router
from apps.notifications.api import router as notifications_router
from apps.pharmacy.api import router as pharmacy_router
from apps.psych.api import router as psych_router
from apps.todos.api import router as todos_router
from recordings.api import router as recordings_router

from .auth import BearerAuth
from .errors import ApiError, HubCode, HubError, Invalid, NotFound, error_response
from .realtime.api import router as realtime_router

log = logging.getLogger(__name__)

api = NinjaAPI(
    title="互联网医院 API",
    version="1",
    urls_namespace="api",
    auth=BearerAuth(),
    docs_url="/docs" if settings.API_DOCS else None,
    openapi_url="/openapi.json" if settings.API_DOCS else None,
)


# Every handler answers through hub.errors.error_response: the one place the body is built.


@api.exception_handler(ApiError)
def on_api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
    return error_response(exc)


@api.exception_handler(ValidationError)
def on_validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    fields = []
    for err in exc.errors:
        loc = [str(part) for part in err.get("loc", []) if part not in ("body", "payload", "query", "path")]
        fields.append({"field": ".".join(loc), "problem": err.get("msg", "")})
    return error_response(HubError(HubCode.VALIDATION_ERROR, fields=fields))


@api.exception_handler(AuthenticationError)
def on_auth_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return error_response(HubError(HubCode.UNAUTHENTICATED))


@api.exception_handler(Http404)
def on_not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return error_response(NotFound())


@api.exception_handler(HttpError)
def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    if exc.status_code == 400:
        # ninja's one 400: a body that does not parse as JSON. Bad input like any other,
        # the 422 every route with a body declares, in Chinese.
        return error_response(Invalid("请求内容不是有效的 JSON", fields=[{"field": "", "problem": "invalid_json"}]))
    # ninja's own refusals (unparsable body, CSRF, throttling): no table of ours lists them.
    return error_response(HubError.unlisted(f"http_{exc.status_code}", exc.status_code, str(exc.message)))


@api.exception_handler(Exception)
def on_unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
    if isinstance(exc, DataError | OverflowError):
        # A value the database cannot hold (an id beyond bigint, say) is bad input, not an outage.
        log.info("value out of range on %s: %s", request.path, exc)
        return error_response(Invalid("数值超出允许范围"))
    if isinstance(exc, ValueError) and "NUL (0x00)" in str(exc):
        # psycopg2 refuses a string with a NUL character before sending the query: bad input too.
        log.info("NUL character in input on %s", request.path)
        return error_response(Invalid("内容不能包含空字符（NUL）", fields=[{"field": "", "problem": "nul_character"}]))
    if isinstance(exc, OperationalError | InterfaceError | DatabaseError):
        log.warning("database unavailable: %s", exc)
        return error_response(HubError(HubCode.SERVICE_UNAVAILABLE))
    log.exception("unhandled error on %s", request.path)
    return error_response(HubError(HubCode.INTERNAL_ERROR, request_id=getattr(request, "request_id", "")))


api.add_router("/auth/", auth_router, tags=["登录认证"])
api.add_router("/accounts/", accounts_router, tags=["账号"])
api.add_router("/admin/", admin_router, tags=["用户管理"])
api.add_router("/audit/", audit_router, tags=["审计"])
api.add_router("/realtime/", realtime_router, tags=["实时连接"])
api.add_router("/im/", im_router, tags=["即时通讯"])
api.add_router("/care/", care_router, tags=["诊疗关系"])
api.add_router("/psych/", psych_router, tags=["心理测评"])
api.add_router("/notifications/", notifications_router, tags=["通知"])
api.add_router("/recordings/", recordings_router, tags=["录像"])
api.add_router("/media/", media_router, tags=["音视频"])
api.add_router("/todos/", todos_router, tags=["待办"])
api.add_router("/pharmacy/", pharmacy_router, tags=["药学与处方"])
api.add_router("/commerce/", commerce_router, tags=["订单与支付"])
api.add_router("/delivery/", delivery_router, tags=["配送"])
api.add_router("/consultations/", consultations_router, tags=["在线复诊"])
# consultations, clinical parts (prior records, record, invitations, rating, summary)
api.add_router("/consultations/", consult_clinical_router, tags=["在线复诊·诊疗"])
