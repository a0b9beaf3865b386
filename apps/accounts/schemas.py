from __future__ import annotations

import datetime as dt
from typing import Literal

from ninja import Schema
from pydantic import Field


class StaffLoginIn(Schema):
    username: str = Field(min_length=1, max_length=150)
    password: str = Field(min_length=1, max_length=128)
    otp: str = Field("", max_length=6)


class PasswordChangeIn(Schema):
    change_token: str = Field("", max_length=128)
    old_password: str = Field(max_length=128)
    new_password: str = Field(max_length=128)


class SmsSendIn(Schema):
    phone: str = Field(max_length=20)


class SmsSendOut(Schema):
    cooldown_seconds: int
    expires_in: int


class SmsLoginIn(Schema):
    phone: str = Field(max_length=20)
    code: str = Field(max_length=6)


class MiniProgramLoginIn(Schema):
    platform: Literal["weixin", "alipay"]
    code: str = Field(min_length=1, max_length=512)


class UserOut(Schema):
    id: int
    username: str
    display_name: str
    role: str
    role_label: str
    phone_masked: str
    is_staff_role: bool
    must_change_password: bool
    department: str  # staff: 科室 ("" for patients)
    title: str  # staff: 职称


class TokenOut(Schema):
    token: str
    expires_at: dt.datetime
    user: UserOut


class TicketOut(Schema):
    ticket: str
    expires_in: int


class PatientIn(Schema):
    name: str = Field(max_length=32)
    id_number: str = Field(max_length=18)
    phone: str = Field("", max_length=20)
    relation: Literal["self", "spouse", "child", "parent", "other"]


class PatientOut(Schema):
    id: int
    name: str
    relation: str
    relation_label: str
    id_number_masked: str
    phone_masked: str
    sex: str
    sex_label: str
    birth_date: dt.date
    is_self: bool


class PatientList(Schema):
    items: list[PatientOut]
    count: int
    family_limit: int  # family members (besides 本人) an account may add
    family_remaining: int
    spouse_registered: bool


class PatientUpdateIn(Schema):
    name: str = Field(max_length=32)
    phone: str = Field("", max_length=20)
    relation: Literal["self", "spouse", "child", "parent", "other"]


class ConsentIn(Schema):
    purpose: Literal["health_data", "recording", "courier_sharing", "research"]
    granted: bool


class ConsentOut(Schema):
    purpose: str
    purpose_label: str
    granted: bool
    updated_at: dt.datetime | None


class ConsentList(Schema):
    items: list[ConsentOut]


class AdminUserOut(Schema):
    id: int
    username: str
    display_name: str
    role: str
    role_label: str
    is_active: bool
    locked_until: dt.datetime | None
    last_login: dt.datetime | None
    phone_masked: str
    department: str
    title: str
    totp_state: str  # "" (role without TOTP), "pending" (enrols at next sign-in), "enrolled"
    totp_state_label: str


class AdminUserList(Schema):
    items: list[AdminUserOut]
    count: int


class StaffCreateIn(Schema):
    username: str = Field(max_length=32)
    display_name: str = Field(min_length=1, max_length=64)
    role: str = Field(max_length=16)
    phone: str = Field("", max_length=20)
    licence_no: str = Field("", max_length=64)
    years_of_practice: int = Field(0, ge=0, le=80)
    department: str = Field("", max_length=64)
    title: str = Field("", max_length=64)


class StaffCreatedOut(Schema):
    user: AdminUserOut
    initial_password: str
    totp_enrolment_pending: bool  # 首次登录时由本人绑定身份验证器


class RoleIn(Schema):
    role: str = Field(max_length=16)


class RoleChangedOut(Schema):
    user: AdminUserOut
    totp_enrolment_pending: bool


class SessionsRevokedOut(Schema):
    revoked: int  # how many sessions (tokens) ended


class TotpEnrolIn(Schema):
    enrol_token: str = Field(min_length=1, max_length=128)


class TotpEnrolmentOut(Schema):
    secret: str  # base32, for typing into the authenticator when scanning is not possible
    otpauth_uri: str
    qr_svg: str  # data:image/svg+xml URI of the QR code
    account: str
    issuer: str


class TotpConfirmIn(Schema):
    enrol_token: str = Field(min_length=1, max_length=128)
    code: str = Field(min_length=6, max_length=6, pattern=r"^\d{6}$")
