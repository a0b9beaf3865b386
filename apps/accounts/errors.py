"""Error codes of the accounts domain (login, administration, patients): each code's
status and default message, one error type."""

from __future__ import annotations

from enum import StrEnum

from hub.errors import ApiError, ErrorSpec


class AuthCode(StrEnum):
    # Same answer for unknown user, wrong password, disabled account: no enumeration.
    INVALID_CREDENTIALS = "auth.invalid_credentials"
    LOCKED = "auth.locked"  # detail: retry_after_seconds
    OTP_REQUIRED = "auth.otp_required"
    OTP_INVALID = "auth.otp_invalid"  # detail (SMS codes): remaining_attempts
    OTP_EXHAUSTED = "auth.otp_exhausted"
    OTP_EXPIRED = "auth.otp_expired"
    OTP_COOLDOWN = "auth.otp_cooldown"  # detail: retry_after_seconds
    OTP_DAILY_LIMIT = "auth.otp_daily_limit"
    PASSWORD_WEAK = "auth.password_weak"  # detail: reasons
    PASSWORD_EXPIRED = "auth.password_expired"  # detail: change_token for /auth/password/change
    TOTP_ENROLMENT_REQUIRED = "auth.totp_enrolment_required"  # detail: enrol_token for /auth/totp/*
    TOTP_ENROL_EXPIRED = "auth.totp_enrol_expired"
    TOTP_ENROL_NOT_STARTED = "auth.totp_enrol_not_started"
    TOTP_NOT_USED = "admin.totp_not_used"
    ACCOUNT_DISABLED = "auth.account_disabled"
    MINIPROGRAM_CODE_INVALID = "auth.miniprogram_code_invalid"
    MINIPROGRAM_UNAVAILABLE = "auth.miniprogram_unavailable"
    ADMIN_FORBIDDEN_ROLE = "admin.forbidden_role"
    ADMIN_USERNAME_TAKEN = "admin.username_taken"
    ADMIN_SELF_ACTION = "admin.self_action"
    ADMIN_SEPARATION_OF_DUTIES = "admin.separation_of_duties"
    ID_NUMBER_INVALID = "accounts.id_number_invalid"  # the message says what is wrong
    FAMILY_LIMIT = "accounts.family_limit"
    PATIENT_EXISTS = "accounts.patient_exists"
    SPOUSE_EXISTS = "accounts.spouse_exists"
    SELF_RELATION_FIXED = "accounts.self_relation_fixed"
    CANNOT_REMOVE_SELF = "accounts.cannot_remove_self"


ERRORS: dict[str, ErrorSpec] = {
    AuthCode.INVALID_CREDENTIALS: ErrorSpec(401, "用户名或密码错误"),
    AuthCode.LOCKED: ErrorSpec(423, "登录失败次数过多，账号已临时锁定，请稍后再试"),
    AuthCode.OTP_REQUIRED: ErrorSpec(401, "请输入动态验证码"),
    AuthCode.OTP_INVALID: ErrorSpec(401, "验证码错误"),
    AuthCode.OTP_EXHAUSTED: ErrorSpec(401, "验证码错误次数过多，请重新获取"),
    AuthCode.OTP_EXPIRED: ErrorSpec(401, "验证码已过期，请重新获取"),
    AuthCode.OTP_COOLDOWN: ErrorSpec(429, "验证码发送过于频繁，请稍后再试"),
    AuthCode.OTP_DAILY_LIMIT: ErrorSpec(429, "今日验证码发送次数已达上限"),
    AuthCode.PASSWORD_WEAK: ErrorSpec(422, "密码不符合安全要求"),
    AuthCode.PASSWORD_EXPIRED: ErrorSpec(403, "密码已过期或为初始密码，请先修改密码"),
    AuthCode.TOTP_ENROLMENT_REQUIRED: ErrorSpec(403, "首次登录请先绑定身份验证器（动态验证码）"),
    AuthCode.TOTP_ENROL_EXPIRED: ErrorSpec(401, "绑定已超时，请重新输入用户名和密码登录"),
    AuthCode.TOTP_ENROL_NOT_STARTED: ErrorSpec(409, "请先获取二维码并用身份验证器扫描"),
    AuthCode.TOTP_NOT_USED: ErrorSpec(409, "该用户的角色不使用动态验证码"),
    AuthCode.ACCOUNT_DISABLED: ErrorSpec(403, "账号已停用，请联系客服"),
    AuthCode.MINIPROGRAM_CODE_INVALID: ErrorSpec(401, "登录凭证无效，请重新进入小程序"),
    AuthCode.MINIPROGRAM_UNAVAILABLE: ErrorSpec(503, "小程序登录暂不可用，请使用手机号验证码登录"),
    AuthCode.ADMIN_FORBIDDEN_ROLE: ErrorSpec(403, "管理类角色只能通过应急流程创建"),
    AuthCode.ADMIN_USERNAME_TAKEN: ErrorSpec(409, "用户名已存在"),
    AuthCode.ADMIN_SELF_ACTION: ErrorSpec(409, "不能对自己的账号执行该操作"),
    AuthCode.ADMIN_SEPARATION_OF_DUTIES: ErrorSpec(409, "该操作违反职责分离要求"),
    AuthCode.ID_NUMBER_INVALID: ErrorSpec(422, "身份证号码不正确"),
    AuthCode.FAMILY_LIMIT: ErrorSpec(422, "家庭成员数量已达上限"),
    AuthCode.PATIENT_EXISTS: ErrorSpec(409, "该就诊人已添加"),
    AuthCode.SPOUSE_EXISTS: ErrorSpec(409, "已登记配偶，不能再添加一位配偶；如需更正请先修改或删除原记录"),
    AuthCode.SELF_RELATION_FIXED: ErrorSpec(409, "“本人”的关系不能修改，其他成员也不能改为“本人”"),
    AuthCode.CANNOT_REMOVE_SELF: ErrorSpec(409, "不能删除本人"),
}


class AuthError(ApiError):
    codes = AuthCode
    table = ERRORS
