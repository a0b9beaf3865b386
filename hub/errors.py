"""One error type for the API and the socket: a stable code, a Chinese message
for the user, and structured detail for the client to act on.

Each app's ``errors.py`` holds a ``StrEnum`` of its codes, the table of each
code's HTTP status and default message (a ``str.format`` template over the
detail), and one error type subclassing :class:`ApiError` bound to that table::

    raise PsychError(PsychCode.SCALE_UNKNOWN, scale=code)

The body ``{"code", "message", "detail"}`` is built only by
:func:`error_body` / :func:`error_response` (the ninja exception handlers and
the plain Django views use it); routes declare their codes per status with
:func:`errors`, which documents them in OpenAPI with :class:`ErrorOut`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from enum import StrEnum
from http import HTTPStatus
from typing import Annotated, Any, ClassVar, NamedTuple, Self, TypeVar

from django.http import HttpRequest, JsonResponse
from django.http.response import HttpResponseBase
from pydantic import BaseModel, Field


class ErrorSpec(NamedTuple):
    status: int
    message: str  # default message; ``{name}`` fields are filled from the detail


V = TypeVar("V", bound=Callable[..., Any])

# Every code of every bound table -> its spec; a code is declared once across the project.
_CODES: dict[str, ErrorSpec] = {}


class ApiError(Exception):
    """Base of the domain errors. A subclass binds ``codes`` (its ``StrEnum``) and
    ``table`` (status and default message of each); raising it looks the code up::

        raise CareError(CareCode.PATIENT_REQUIRED, patient_ids=[...])

    ``message`` replaces the default where the text is dynamic; every other
    keyword becomes the ``detail``."""

    codes: ClassVar[type[StrEnum] | None] = None
    table: ClassVar[Mapping[str, ErrorSpec]] = {}

    code: str
    message: str
    status: int
    detail: dict[str, Any]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "table" not in cls.__dict__:
            return
        assert cls.codes is not None, f"{cls.__name__} binds a table without its codes"
        missing = {str(c) for c in cls.codes} ^ {str(c) for c in cls.table}
        assert not missing, f"{cls.__name__}: codes and table differ on {sorted(missing)}"
        for code, spec in cls.table.items():
            assert code not in _CODES or _CODES[code] is spec, f"error code {code!r} declared twice"
            _CODES[str(code)] = spec

    def __init__(self, code: str, message: str | None = None, /, **detail: Any) -> None:
        spec = self.table.get(code)
        if spec is None:
            raise LookupError(f"{code!r} is not a code of {type(self).__name__}")
        self._set(code, spec.status, message if message is not None else spec.message.format_map(detail), detail)

    def _set(self, code: str, status: int, message: str, detail: Mapping[str, Any]) -> None:
        Exception.__init__(self, str(code))
        self.code = str(code)
        self.status = status
        self.message = message
        self.detail = dict(detail)

    @classmethod
    def unlisted(cls, code: str, status: int, message: str, **detail: Any) -> Self:
        """An error whose code comes from outside (ninja's ``http_<status>``, a media node's
        refusal, a lifecycle's own refused code): the one way around the table."""
        exc = cls.__new__(cls)
        exc._set(code, status, message, detail)
        return exc

    def answered_with(self, status: int) -> Self:
        """The same error with another status, where a protocol dictates it (WHIP's 400
        for an offer the node cannot take); everywhere else the table's status holds."""
        self.status = status
        return self

    def as_dict(self) -> dict[str, Any]:
        return error_body(self.code, self.message, self.detail)


class HubCode(StrEnum):
    """Codes every app may answer with (the API layer's own and the generic ones)."""

    NOT_FOUND = "not_found"  # unknown object or no right to see it: one answer, no enumeration
    FORBIDDEN = "forbidden"
    VALIDATION_ERROR = "validation_error"
    UNAUTHENTICATED = "auth.unauthenticated"  # no or dead bearer token
    METHOD_NOT_ALLOWED = "method_not_allowed"
    SERVICE_UNAVAILABLE = "service_unavailable"  # the database (or a dependency) is down
    INTERNAL_ERROR = "internal_error"
    # Signed grants (media rooms, replay) presented outside the bearer token.
    GRANT_MISSING = "grant.missing"
    GRANT_INVALID = "grant.invalid"
    GRANT_MALFORMED = "grant.malformed"
    GRANT_EXPIRED = "grant.expired"
    GRANT_REVOKED = "grant.revoked"  # issued under a session that has since ended (logout)


HUB_ERRORS: dict[str, ErrorSpec] = {
    HubCode.NOT_FOUND: ErrorSpec(404, "对象不存在或无权访问"),
    HubCode.FORBIDDEN: ErrorSpec(403, "无权执行该操作"),
    HubCode.VALIDATION_ERROR: ErrorSpec(422, "提交的数据格式不正确"),
    HubCode.UNAUTHENTICATED: ErrorSpec(401, "登录已失效，请重新登录"),
    HubCode.METHOD_NOT_ALLOWED: ErrorSpec(405, "不支持的请求方法"),
    HubCode.SERVICE_UNAVAILABLE: ErrorSpec(503, "服务暂时不可用，请稍后重试"),
    HubCode.INTERNAL_ERROR: ErrorSpec(500, "系统繁忙，请稍后重试"),
    HubCode.GRANT_MISSING: ErrorSpec(401, "缺少媒体授权凭证"),
    HubCode.GRANT_INVALID: ErrorSpec(403, "授权凭证无效"),
    HubCode.GRANT_MALFORMED: ErrorSpec(403, "授权凭证格式不正确"),
    HubCode.GRANT_EXPIRED: ErrorSpec(403, "授权凭证已过期"),
    HubCode.GRANT_REVOKED: ErrorSpec(403, "登录已退出，授权凭证已失效"),
}


class HubError(ApiError):
    codes = HubCode
    table = HUB_ERRORS

    @classmethod
    def from_grant(cls, code: str, message: str) -> HubError:
        """A ``media_engine.grants.GrantError`` (the library cannot import the hub) as an API error."""
        return cls(HubCode(code) if code in HUB_ERRORS else HubCode.GRANT_INVALID, message)


class NotFound(HubError):
    def __init__(self, what: str = "对象") -> None:
        super().__init__(HubCode.NOT_FOUND, f"{what}不存在或无权访问")


class Forbidden(HubError):
    def __init__(self, message: str | None = None) -> None:
        super().__init__(HubCode.FORBIDDEN, message)


class Invalid(HubError):
    """``validation_error`` found by a service rather than the input schema."""

    def __init__(self, message: str, /, **detail: Any) -> None:
        super().__init__(HubCode.VALIDATION_ERROR, message, **detail)


def code_spec(code: str) -> ErrorSpec:
    """Status and default message of any declared code."""
    return _CODES[str(code)]


def declared_codes() -> dict[str, ErrorSpec]:
    """Every code of every bound table imported so far (all of them once the API is built)."""
    return dict(_CODES)


# --- the one renderer ---------------------------------------------------------------------


def error_body(code: str, message: str, detail: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return {"code": str(code), "message": message, "detail": dict(detail or {})}


def error_response(exc: ApiError) -> JsonResponse:
    """The HTTP answer for ``exc``: the ninja handlers (``hub.api``) and the plain Django
    views (WHIP/WHEP, replay) both answer through here."""
    return JsonResponse(exc.as_dict(), status=exc.status)


def renders_errors(view: V) -> V:
    """For plain Django views (sync or async): an :class:`ApiError` raised inside answers
    through :func:`error_response`, as the ninja routes do."""
    if inspect.iscoroutinefunction(view):

        @functools.wraps(view)
        async def async_wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            try:
                return await view(request, *args, **kwargs)
            except ApiError as exc:
                return error_response(exc)

        return async_wrapper  # type: ignore[return-value]

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        try:
            return view(request, *args, **kwargs)
        except ApiError as exc:
            return error_response(exc)

    return wrapper  # type: ignore[return-value]


# --- OpenAPI ------------------------------------------------------------------------------


class ErrorOut(BaseModel):
    """Every error answer of the API (and the socket's ``error`` frame data)."""

    code: str = Field(description="稳定的错误码，客户端据此处理")
    message: str = Field(description="给用户看的中文说明")
    detail: dict[str, Any] = Field(description="供客户端处理的结构化信息")


def errors(*codes: str, auth: bool = True) -> dict[int, Any]:
    """The error part of a route's ``response=``: one entry per status the listed codes
    answer with, each the :class:`ErrorOut` schema naming its codes (``x-error-codes``
    and the description). ``auth`` (the default) adds the 401 of a dead token; every
    route gets ``validation_error`` (422), which any API request can meet before its
    route does (a number beyond bigint anywhere in the path or query, a NUL character)::

        @router.get("/x", response={200: XOut, **errors(PsychCode.NOT_YOUR_PATIENT)})
    """
    by_status: dict[int, list[str]] = {}
    for code in ((HubCode.UNAUTHENTICATED,) if auth else ()) + codes + (HubCode.VALIDATION_ERROR,):
        spec = code_spec(code)
        if str(code) not in by_status.setdefault(spec.status, []):
            by_status[spec.status].append(str(code))
    out: dict[int, Any] = {}
    for status, listed in sorted(by_status.items()):
        text = HTTPStatus(status).phrase + ": " + "; ".join(f"{c}（{code_spec(c).message}）" for c in listed)
        extra: dict[str, Any] = {"x-error-codes": listed}
        out[status] = Annotated[ErrorOut, Field(description=text, json_schema_extra=extra)]
    return out
