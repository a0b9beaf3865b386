"""Error codes of the audit log API: each code's status and default message, one error type."""

from __future__ import annotations

from enum import StrEnum

from hub.errors import ApiError, ErrorSpec


class AuditCode(StrEnum):
    RANGE_INVALID = "audit.range_invalid"
    EXPORT_TOO_LARGE = "audit.export_too_large"  # detail: count, limit


ERRORS: dict[str, ErrorSpec] = {
    AuditCode.RANGE_INVALID: ErrorSpec(422, "开始时间不能晚于结束时间"),
    AuditCode.EXPORT_TOO_LARGE: ErrorSpec(
        422, "符合条件的记录有 {count} 条，超过单次导出上限 {limit} 条，请缩小时间范围或增加筛选条件后再导出"
    ),
}


class AuditError(ApiError):
    codes = AuditCode
    table = ERRORS
