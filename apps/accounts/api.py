from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Query, Router, Status

from apps.audit.services import audit_record
from hub.auth import require_roles
from hub.errors import HubCode, HubError, errors
from hub.middleware import client_ip
from hub.pagination import PageParams, page

from . import selectors, services
from .errors import AuthCode, AuthError
from .models import AuthToken, Patient, User
from .roles import Role
from .schemas import (
    AdminUserList,
    AdminUserOut,
    ConsentIn,
    ConsentList,
    ConsentOut,
    MiniProgramLoginIn,
    PasswordChangeIn,
    PatientIn,
    PatientList,
    PatientOut,
    PatientUpdateIn,
    RoleChangedOut,
    RoleIn,
    SessionsRevokedOut,
    SmsLoginIn,
    SmsSendIn,
    SmsSendOut,
    StaffCreatedOut,
    StaffCreateIn,
    StaffLoginIn,
    TokenOut,
    TotpConfirmIn,
    TotpEnrolIn,
    TotpEnrolmentOut,
    UserOut,
)

auth_router = Router()
router = Router()
admin_router = Router()


def _client(request: HttpRequest) -> str:
    return request.headers.get("X-Client", "")[:32]


def _token_out(issued: services.IssuedToken) -> dict[str, Any]:
    return {
        "token": issued.raw,
        "expires_at": issued.token.expires_at,
        "user": selectors.user_public(issued.token.user),
    }


# --- login -----------------------------------------------------------------


@auth_router.post(
    "/staff/login",
    auth=None,
    response={
        200: TokenOut,
        **errors(
            AuthCode.INVALID_CREDENTIALS,
            AuthCode.LOCKED,
            AuthCode.OTP_REQUIRED,
            AuthCode.OTP_INVALID,
            AuthCode.PASSWORD_EXPIRED,
            AuthCode.TOTP_ENROLMENT_REQUIRED,
            HubCode.VALIDATION_ERROR,
            auth=False,
        ),
    },
    summary="工作人员登录",
)
def staff_login(request: HttpRequest, payload: StaffLoginIn) -> dict[str, Any]:
    result = services.staff_login(
        username=payload.username,
        password=payload.password,
        otp=payload.otp,
        ip=client_ip(request),
        client=_client(request) or "console",
    )
    return _login_answer(result)


def _login_answer(result: services.StaffLoginResult) -> dict[str, Any]:
    if result.enrol_token:
        raise AuthError(AuthCode.TOTP_ENROLMENT_REQUIRED, enrol_token=result.enrol_token)
    if result.issued is None:
        raise AuthError(AuthCode.PASSWORD_EXPIRED, change_token=result.change_token)
    return _token_out(result.issued)


@auth_router.post(
    "/totp/enrolment",
    auth=None,
    response={200: TotpEnrolmentOut, **errors(AuthCode.TOTP_ENROL_EXPIRED, HubCode.VALIDATION_ERROR, auth=False)},
    summary="首次登录：获取身份验证器绑定二维码（每次调用生成新密钥）",
)
def totp_enrolment(request: HttpRequest, payload: TotpEnrolIn) -> dict[str, Any]:
    e = services.totp_enrolment_start(enrol_token=payload.enrol_token)
    return {
        "secret": e.secret,
        "otpauth_uri": e.otpauth_uri,
        "qr_svg": e.qr_svg,
        "account": e.account,
        "issuer": e.issuer,
    }


@auth_router.post(
    "/totp/confirm",
    auth=None,
    response={
        200: TokenOut,
        **errors(
            AuthCode.TOTP_ENROL_EXPIRED,
            AuthCode.TOTP_ENROL_NOT_STARTED,
            AuthCode.OTP_INVALID,
            AuthCode.LOCKED,
            AuthCode.PASSWORD_EXPIRED,
            HubCode.VALIDATION_ERROR,
            auth=False,
        ),
    },
    summary="首次登录：输入身份验证器上的验证码完成绑定并登录",
)
def totp_confirm(request: HttpRequest, payload: TotpConfirmIn) -> dict[str, Any]:
    result = services.totp_enrolment_confirm(
        enrol_token=payload.enrol_token,
        code=payload.code,
        ip=client_ip(request),
        client=_client(request) or "console",
    )
    return _login_answer(result)


@auth_router.post(
    "/password/change",
    auth=None,
    response={
        204: None,
        **errors(
            HubCode.UNAUTHENTICATED,
            AuthCode.INVALID_CREDENTIALS,
            AuthCode.LOCKED,
            AuthCode.PASSWORD_WEAK,
            HubCode.VALIDATION_ERROR,
            auth=False,
        ),
    },
    summary="修改密码",
)
def password_change(request: HttpRequest, payload: PasswordChangeIn) -> Status[None]:
    if payload.change_token:
        live = services.token_authenticate(payload.change_token, kind=AuthToken.Kind.PASSWORD_CHANGE)
    else:
        header = request.headers.get("Authorization", "")
        live = services.token_authenticate(header[7:]) if header.startswith("Bearer ") else None
    if live is None:
        raise HubError(HubCode.UNAUTHENTICATED)
    # Signed in: the session the change is made in stays, every other one ends. With a
    # change token (expired or initial password) every token ends, the change token too.
    services.password_change(
        user=live.user,
        old_password=payload.old_password,
        new_password=payload.new_password,
        ip=client_ip(request),
        keep=None if payload.change_token else live,
    )
    return Status(204, None)


@auth_router.post(
    "/sms/send",
    auth=None,
    response={
        200: SmsSendOut,
        **errors(AuthCode.OTP_COOLDOWN, AuthCode.OTP_DAILY_LIMIT, HubCode.VALIDATION_ERROR, auth=False),
    },
    summary="发送短信验证码",
)
def sms_send(request: HttpRequest, payload: SmsSendIn) -> dict[str, int]:
    services.sms_send(phone=payload.phone, ip=client_ip(request))
    return {"cooldown_seconds": settings.OTP_SEND_INTERVAL_SECONDS, "expires_in": settings.OTP_TTL_SECONDS}


@auth_router.post(
    "/sms/login",
    auth=None,
    response={
        200: TokenOut,
        **errors(
            AuthCode.OTP_INVALID,
            AuthCode.OTP_EXHAUSTED,
            AuthCode.OTP_EXPIRED,
            AuthCode.ACCOUNT_DISABLED,
            HubCode.VALIDATION_ERROR,
            auth=False,
        ),
    },
    summary="短信验证码登录",
)
def sms_login(request: HttpRequest, payload: SmsLoginIn) -> dict[str, Any]:
    issued = services.sms_login(
        phone=payload.phone, code=payload.code, ip=client_ip(request), client=_client(request) or "h5"
    )
    return _token_out(issued)


@auth_router.post(
    "/miniprogram/login",
    auth=None,
    response={
        200: TokenOut,
        **errors(
            AuthCode.MINIPROGRAM_CODE_INVALID,
            AuthCode.MINIPROGRAM_UNAVAILABLE,
            AuthCode.ACCOUNT_DISABLED,
            HubCode.VALIDATION_ERROR,
            auth=False,
        ),
    },
    summary="小程序授权登录",
)
def miniprogram_login(request: HttpRequest, payload: MiniProgramLoginIn) -> dict[str, Any]:
    issued = services.miniprogram_login(platform=payload.platform, code=payload.code, ip=client_ip(request))
    return _token_out(issued)


@auth_router.post("/logout", response={204: None, **errors()}, summary="退出登录")
def logout(request: HttpRequest) -> Status[None]:
    services.token_revoke(token=request.auth_token, reason="logout")  # type: ignore[attr-defined]
    return Status(204, None)


@auth_router.post(
    "/logout/all", response={200: SessionsRevokedOut, **errors()}, summary="退出所有设备（结束本人全部登录会话）"
)
def logout_all(request: HttpRequest) -> dict[str, int]:
    return {"revoked": services.user_logout_everywhere(user=request.auth)}  # type: ignore[attr-defined]


# --- the signed-in user ------------------------------------------------------


@router.get("/me", response={200: UserOut, **errors(), **errors()}, summary="当前登录用户")
def me(request: HttpRequest) -> dict[str, Any]:
    return selectors.user_public(request.auth)  # type: ignore[attr-defined]


@router.get("/patients", response={200: PatientList, **errors(HubCode.FORBIDDEN)}, summary="就诊人列表")
def patient_list(request: HttpRequest) -> dict[str, Any]:
    user = require_roles(request, [Role.PATIENT])
    patients = list(selectors.patients_of(user))
    audit_record(action="patient.list", actor=user, object_type="patient", detail={"count": len(patients)})
    family = [p for p in patients if p.relation != Patient.Relation.SELF]
    return {
        "items": [selectors.patient_view(p, viewer=user) for p in patients],
        "count": len(patients),
        "family_limit": services.MAX_FAMILY_MEMBERS,
        "family_remaining": max(0, services.MAX_FAMILY_MEMBERS - len(family)),
        "spouse_registered": any(p.relation == Patient.Relation.SPOUSE for p in patients),
    }


@router.post(
    "/patients",
    response={
        201: PatientOut,
        **errors(
            HubCode.FORBIDDEN,
            AuthCode.ID_NUMBER_INVALID,
            AuthCode.FAMILY_LIMIT,
            AuthCode.PATIENT_EXISTS,
            AuthCode.SPOUSE_EXISTS,
            HubCode.VALIDATION_ERROR,
        ),
    },
    summary="添加就诊人",
)
def patient_add(request: HttpRequest, payload: PatientIn) -> Status[dict[str, Any]]:
    user = require_roles(request, [Role.PATIENT])
    patient = services.patient_add(
        owner=user, name=payload.name, id_number=payload.id_number, phone=payload.phone, relation=payload.relation
    )
    return Status(201, selectors.patient_view(patient, viewer=user))


@router.patch(
    "/patients/{patient_id}",
    response={
        200: PatientOut,
        **errors(
            HubCode.FORBIDDEN,
            HubCode.NOT_FOUND,
            AuthCode.SPOUSE_EXISTS,
            AuthCode.SELF_RELATION_FIXED,
            HubCode.VALIDATION_ERROR,
        ),
    },
    summary="修改就诊人（姓名、手机号、关系；证件号不可改）",
)
def patient_update(request: HttpRequest, patient_id: int, payload: PatientUpdateIn) -> dict[str, Any]:
    user = require_roles(request, [Role.PATIENT])
    patient = services.patient_update(
        owner=user, patient_id=patient_id, name=payload.name, phone=payload.phone, relation=payload.relation
    )
    return selectors.patient_view(patient, viewer=user)


@router.delete(
    "/patients/{patient_id}",
    response={
        204: None,
        **errors(HubCode.FORBIDDEN, HubCode.NOT_FOUND, AuthCode.CANNOT_REMOVE_SELF, HubCode.VALIDATION_ERROR),
    },
    summary="删除就诊人",
)
def patient_remove(request: HttpRequest, patient_id: int) -> Status[None]:
    user = require_roles(request, [Role.PATIENT])
    services.patient_remove(owner=user, patient_id=patient_id)
    return Status(204, None)


@router.get("/consents", response={200: ConsentList, **errors()}, summary="授权同意记录")
def consent_list(request: HttpRequest) -> dict[str, Any]:
    return {"items": selectors.consents_of(request.auth)}  # type: ignore[attr-defined]


@router.post("/consents", response={200: ConsentOut, **errors(HubCode.VALIDATION_ERROR)}, summary="授予或撤回同意")
def consent_set(request: HttpRequest, payload: ConsentIn) -> dict[str, Any]:
    user = request.auth  # type: ignore[attr-defined]
    services.consent_set(user=user, purpose=payload.purpose, granted=payload.granted, ip=client_ip(request))
    return next(c for c in selectors.consents_of(user) if c["purpose"] == payload.purpose)


# --- administration ------------------------------------------------------------


def _admin_rows(users: list[User]) -> list[dict[str, Any]]:
    locks = selectors.locks_for([u.username for u in users])
    return [selectors.user_admin_row(u, locks.get(u.username)) for u in users]


@admin_router.get(
    "/users",
    response={200: AdminUserList, **errors(HubCode.FORBIDDEN, HubCode.VALIDATION_ERROR)},
    summary="工作人员列表",
)
def admin_user_list(request: HttpRequest, params: Query[PageParams], role: str = "", q: str = "") -> dict[str, Any]:
    require_roles(request, [Role.SYSADMIN, Role.SECADMIN])
    return page(selectors.users_for_admin(role=role, q=q[:50]), params, _admin_rows)


@admin_router.post(
    "/users",
    response={
        201: StaffCreatedOut,
        **errors(
            HubCode.FORBIDDEN, AuthCode.ADMIN_FORBIDDEN_ROLE, AuthCode.ADMIN_USERNAME_TAKEN, HubCode.VALIDATION_ERROR
        ),
    },
    summary="创建工作人员账号",
)
def admin_user_create(request: HttpRequest, payload: StaffCreateIn) -> Status[dict[str, Any]]:
    actor = require_roles(request, [Role.SYSADMIN])
    created = services.user_create_staff(actor=actor, **payload.dict())
    return Status(
        201,
        {
            "user": _admin_rows([created.user])[0],
            "initial_password": created.initial_password,
            "totp_enrolment_pending": created.totp_enrolment_pending,
        },
    )


def _staff(user_id: int) -> User:
    return get_object_or_404(User.objects.exclude(role=Role.PATIENT), pk=user_id)


@admin_router.post(
    "/users/{user_id}/disable",
    response={
        200: AdminUserOut,
        **errors(
            HubCode.FORBIDDEN,
            HubCode.NOT_FOUND,
            AuthCode.ADMIN_SELF_ACTION,
            AuthCode.ADMIN_SEPARATION_OF_DUTIES,
            HubCode.VALIDATION_ERROR,
        ),
    },
    summary="停用账号",
)
def admin_user_disable(request: HttpRequest, user_id: int) -> dict[str, Any]:
    actor = require_roles(request, [Role.SYSADMIN])
    return _admin_rows([services.user_set_active(actor=actor, user=_staff(user_id), active=False)])[0]


@admin_router.post(
    "/users/{user_id}/enable",
    response={
        200: AdminUserOut,
        **errors(
            HubCode.FORBIDDEN,
            HubCode.NOT_FOUND,
            AuthCode.ADMIN_SELF_ACTION,
            AuthCode.ADMIN_SEPARATION_OF_DUTIES,
            HubCode.VALIDATION_ERROR,
        ),
    },
    summary="启用账号",
)
def admin_user_enable(request: HttpRequest, user_id: int) -> dict[str, Any]:
    actor = require_roles(request, [Role.SYSADMIN])
    return _admin_rows([services.user_set_active(actor=actor, user=_staff(user_id), active=True)])[0]


@admin_router.post(
    "/users/{user_id}/role",
    response={
        200: RoleChangedOut,
        **errors(
            HubCode.FORBIDDEN,
            HubCode.NOT_FOUND,
            AuthCode.ADMIN_SELF_ACTION,
            AuthCode.ADMIN_SEPARATION_OF_DUTIES,
            HubCode.VALIDATION_ERROR,
        ),
    },
    summary="变更角色",
)
def admin_user_role(request: HttpRequest, user_id: int, payload: RoleIn) -> dict[str, Any]:
    actor = require_roles(request, [Role.SECADMIN])
    user, pending = services.user_set_role(actor=actor, user=_staff(user_id), role=payload.role)
    return {"user": _admin_rows([user])[0], "totp_enrolment_pending": pending}


@admin_router.post(
    "/users/{user_id}/unlock",
    response={200: AdminUserOut, **errors(HubCode.FORBIDDEN, HubCode.NOT_FOUND, HubCode.VALIDATION_ERROR)},
    summary="解除登录锁定",
)
def admin_user_unlock(request: HttpRequest, user_id: int) -> dict[str, Any]:
    actor = require_roles(request, [Role.SECADMIN])
    return _admin_rows([services.user_unlock(actor=actor, user=_staff(user_id))])[0]


@admin_router.post(
    "/users/{user_id}/totp/reset",
    response={
        200: AdminUserOut,
        **errors(
            HubCode.FORBIDDEN,
            HubCode.NOT_FOUND,
            AuthCode.ADMIN_SELF_ACTION,
            AuthCode.TOTP_NOT_USED,
            HubCode.VALIDATION_ERROR,
        ),
    },
    summary="重置动态验证码（手机丢失等）：下次登录重新绑定",
)
def admin_user_totp_reset(request: HttpRequest, user_id: int) -> dict[str, Any]:
    actor = require_roles(request, [Role.SECADMIN])
    user = _staff(user_id)
    services.user_totp_reset(actor=actor, user=user)
    user.refresh_from_db()
    return _admin_rows([user])[0]


@admin_router.post(
    "/users/{user_id}/sessions/revoke",
    response={
        200: SessionsRevokedOut,
        **errors(HubCode.FORBIDDEN, HubCode.NOT_FOUND, AuthCode.ADMIN_SELF_ACTION, HubCode.VALIDATION_ERROR),
    },
    summary="强制下线：结束该用户的全部登录会话",
)
def admin_user_sessions_revoke(request: HttpRequest, user_id: int) -> dict[str, int]:
    actor = require_roles(request, [Role.SYSADMIN, Role.SECADMIN])
    return {"revoked": services.user_revoke_sessions(actor=actor, user=_staff(user_id))}
