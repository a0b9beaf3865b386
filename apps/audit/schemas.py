from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from ninja import Schema
from pydantic import Field


class AuditFilterIn(Schema):
    person: str = Field("", max_length=150, description="操作人：用户名或姓名（包含即匹配）")
    patient: str = Field("", max_length=64, description="就诊人：编号（12 或 #12）或姓名")
    action: str = Field("", max_length=64, description="操作：中文名称或操作代码（包含即匹配），如“登录”")
    result: Literal["", "ok", "denied", "failed"] = Field("", description="结果：ok 成功、failed 失败、denied 拒绝")
    since: dt.datetime | None = Field(None, description="开始时间（含），ISO 8601；不带时区按北京时间")
    until: dt.datetime | None = Field(None, description="结束时间（不含），ISO 8601；不带时区按北京时间")


class ExportIn(AuditFilterIn):
    format: Literal["csv", "xlsx"] = Field("csv", description="文件格式：csv 或 xlsx")


class DetailItemOut(Schema):
    key: str
    label: str = Field(description="中文名称（未登记的键原样显示）")
    value: str = Field(description="可读的值（时间为北京时间，人名已脱敏）")


class AuditEventOut(Schema):
    id: int
    at: dt.datetime
    actor_id: int | None
    actor_username: str
    actor_label: str = Field(description="操作人：姓名（账号）；患者账号脱敏；无账号时为“系统”或“未登录用户”")
    actor_role: str
    actor_role_label: str
    ip: str
    action: str
    action_label: str
    object_type: str
    object_id: str
    object_label: str = Field(description="对象，如“就诊人 张*（#12）”“登录会话 #19”")
    result: str
    result_label: str
    request_id: str
    detail: dict[str, Any]
    detail_items: list[DetailItemOut]


class AuditEventList(Schema):
    items: list[AuditEventOut]
    count: int


class CodeLabelOut(Schema):
    code: str
    label: str


class LabelsOut(Schema):
    actions: list[CodeLabelOut]
    results: list[CodeLabelOut]
    object_types: list[CodeLabelOut]


class VerifyOut(Schema):
    ok: bool
    checked: int
    first_bad_id: int | None
