"""Stable error codes of the accounts domain."""

from __future__ import annotations

from typing import Any

from hub.errors import ApiError


def invalid_credentials() -> ApiError:
    # Same answer for unknown user, wrong password, disabled account: no enumeration.
    return ApiError("auth.invalid_credentials", "用户名或密码错误", status=401)


def locked(retry_after: int) -> ApiError:
    return ApiError(
        "auth.locked",
        "登录失败次数过多，账号已临时锁定，请稍后再试",
        status=423,
        detail={"retry_after_seconds": retry_after},
    )


def otp_required() -> ApiError:
    return ApiError("auth.otp_required", "请输入动态验证码", status=401)


def otp_invalid(**detail: Any) -> ApiError:
    return ApiError("auth.otp_invalid", "验证码错误", status=401, detail=detail)


def unauthenticated() -> ApiError:
    return ApiError("auth.unauthenticated", "登录已失效，请重新登录", status=401)
