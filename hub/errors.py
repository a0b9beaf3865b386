"""One error type for the API and the socket: a stable code, a Chinese message
for the user, and structured detail for the client to act on."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    status = 400

    def __init__(
        self, code: str, message: str, *, status: int | None = None, detail: dict[str, Any] | None = None
    ) -> None:
        super().__init__(code)
        self.code = code
        self.message = message
        self.detail = detail or {}
        if status is not None:
            self.status = status

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "detail": self.detail}


class NotFound(ApiError):
    def __init__(self, what: str = "对象") -> None:
        super().__init__("not_found", f"{what}不存在或无权访问", status=404)


class Forbidden(ApiError):
    def __init__(self, message: str = "无权执行该操作", code: str = "forbidden") -> None:
        super().__init__(code, message, status=403)
