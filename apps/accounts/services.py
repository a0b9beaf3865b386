"""Writes of the accounts domain: login, tokens, users, patients, consents."""

from __future__ import annotations

import datetime as dt
import logging
import re
import secrets
from dataclasses import dataclass
from typing import Any, NoReturn

import pyotp
from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.audit.services import audit_record
from apps.notifications.services import notification_enqueue
from hub import crypto
from hub.errors import Forbidden, Invalid, NotFound
from hub.outside import SandboxInProduction
from hub.realtime.sessions import end_sessions_on_commit
from hub.sqlutil import as_datetime

from .adapters import MiniProgramLoginError, MiniProgramUnavailable, miniprogram_adapter
from .errors import AuthCode, AuthError
from .idcard import InvalidIdNumber, parse_id_number
from .models import (
    AuthToken,
    ConsentRecord,
    LoginThrottle,
    MiniProgramIdentity,
    PasswordHistory,
    Patient,
    RealtimeTicket,
    SmsCode,
    StaffProfile,
    User,
)
from .passwords import generate_password, password_expired, password_problems
from .roles import ADMIN_ROLES, STAFF_ROLES, TOTP_ROLES, Role
from .signals import consent_changed, sessions_revoked

log = logging.getLogger(__name__)

PHONE_RE = re.compile(r"^1[3-9]\d{9}$")
MAX_FAMILY_MEMBERS = 5
# A hash to check against when the username is unknown, so both paths cost the same.
_DUMMY_PASSWORD_HASH = make_password(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class IssuedToken:
    raw: str
    token: AuthToken


# --- tokens ----------------------------------------------------------------


def token_issue(*, user: User, client: str = "", ip: str = "", kind: str = AuthToken.Kind.SESSION) -> IssuedToken:
    now = timezone.now()
    if kind in (AuthToken.Kind.PASSWORD_CHANGE, AuthToken.Kind.TOTP_ENROL):
        lifetime = dt.timedelta(minutes=10)
    elif user.is_staff_role:
        lifetime = dt.timedelta(hours=settings.STAFF_TOKEN_LIFETIME_HOURS)
    else:
        lifetime = dt.timedelta(days=settings.PATIENT_TOKEN_LIFETIME_DAYS)
    raw = secrets.token_urlsafe(32)
    token = AuthToken.objects.create(
        user=user,
        key_hash=crypto.token_hash(raw),
        kind=kind,
        created_at=now,
        expires_at=now + lifetime,
        last_seen_at=now,
        client=client[:32],
        ip=ip,
    )
    return IssuedToken(raw=raw, token=token)


def token_is_live(token: AuthToken, *, now: dt.datetime) -> bool:
    """The one liveness rule for a token, whatever carries it (API request,
    socket auth frame or ticket, the socket's re-check): not revoked, not
    expired, its user active. The staff idle timeout is a rule of use on top,
    applied where the token is used (:func:`token_authenticate`)."""
    return token.revoked_at is None and token.expires_at > now and token.user.is_active


def token_live(token_id: int) -> bool:
    """Whether the token with this id is still live (an open socket's re-check)."""
    token = AuthToken.objects.select_related("user").filter(pk=token_id).first()
    return token is not None and token_is_live(token, now=timezone.now())


def token_authenticate(raw: str, *, kind: str = AuthToken.Kind.SESSION, touch: bool = True) -> AuthToken | None:
    """The live token for ``raw``, or None. Staff tokens idle for longer than the
    idle timeout are revoked here, so the next use fails too."""
    if not raw or len(raw) > 128:
        return None
    token = _live_token(crypto.token_hash(raw), kind)
    now = timezone.now()
    if token is None or not token_is_live(token, now=now):
        return None
    if token.user.is_staff_role and kind == AuthToken.Kind.SESSION:
        idle = dt.timedelta(minutes=settings.STAFF_IDLE_TIMEOUT_MINUTES)
        if now - token.last_seen_at > idle:
            token_revoke(token=token, reason="idle_timeout")
            return None
    # Only staff sessions have an idle timeout: patients' tokens are not written
    # on use (a reconnect storm of patients then costs no writes).
    if touch and token.user.is_staff_role and now - token.last_seen_at > dt.timedelta(seconds=60):
        AuthToken.objects.filter(pk=token.pk).update(last_seen_at=now)
        token.last_seen_at = now
    return token


_TOKEN_SQL = (
    "SELECT u.*, t.id AS t_id, t.expires_at AS t_expires_at, t.last_seen_at AS t_last_seen_at"
    " FROM accounts_user u JOIN accounts_authtoken t ON t.user_id = u.id"
    " WHERE t.key_hash = %s AND t.kind = %s AND t.revoked_at IS NULL"
)


def _live_token(key_hash: str, kind: str) -> AuthToken | None:
    """One indexed join, written in SQL: every API request and every socket
    (re)connect runs it, and the ORM's query building was most of its cost."""
    users = list(User.objects.raw(_TOKEN_SQL, [key_hash, kind]))
    if not users:
        return None
    user: Any = users[0]
    expires_at: Any = as_datetime(user.t_expires_at)
    last_seen_at: Any = as_datetime(user.t_last_seen_at)
    return AuthToken(
        id=user.t_id, user=user, key_hash=key_hash, kind=kind, expires_at=expires_at, last_seen_at=last_seen_at
    )


def token_revoke(*, token: AuthToken, reason: str) -> None:
    with transaction.atomic():
        updated = AuthToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
        if updated:
            audit_record(
                action="auth.logout" if reason == "logout" else "auth.token_revoked",
                actor=token.user,
                object_type="token",
                object_id=token.pk,
                detail={"reason": reason},
            )
            _sessions_revoked_on_commit(user_id=token.user_id, token_ids=[token.pk], reason=reason)
        end_sessions_on_commit(token_id=token.pk, reason=reason)


def user_revoke_all_tokens(*, user: User, reason: str, keep: AuthToken | None = None) -> int:
    """Revoke every token of ``user`` (but ``keep``) and close their sockets (after commit)."""
    tokens = AuthToken.objects.filter(user=user, revoked_at__isnull=True)
    if keep is None:
        now = timezone.now()
        count = tokens.update(revoked_at=now)
        revoked = AuthToken.objects.filter(user=user, revoked_at=now).values_list("pk", flat=True)
        _sessions_revoked_on_commit(user_id=user.pk, token_ids=list(revoked), reason=reason)
        end_sessions_on_commit(user_id=user.pk, reason=reason)
        return count
    ids = list(tokens.exclude(pk=keep.pk).values_list("pk", flat=True))
    count = AuthToken.objects.filter(pk__in=ids, revoked_at__isnull=True).update(revoked_at=timezone.now())
    _sessions_revoked_on_commit(user_id=user.pk, token_ids=ids, reason=reason)
    for token_id in ids:
        end_sessions_on_commit(token_id=token_id, reason=reason)
    return count


def _sessions_revoked_on_commit(*, user_id: int, token_ids: list[int], reason: str) -> None:
    """Once the revocation is durable, tell the subscribers (media ends what those
    sessions opened); a receiver that fails is logged and never undoes the logout."""
    if not token_ids:
        return

    def send() -> None:
        for receiver, result in sessions_revoked.send_robust(
            sender=AuthToken, user_id=user_id, token_ids=token_ids, reason=reason
        ):
            if isinstance(result, Exception):
                log.error("sessions_revoked receiver %r failed: %r", receiver, result)

    transaction.on_commit(send)


def user_logout_everywhere(*, user: User) -> int:
    """The user ends every session of theirs, the current one included."""
    with transaction.atomic():
        count = user_revoke_all_tokens(user=user, reason="logout_all")
        audit_record(
            action="auth.logout_all", actor=user, object_type="user", object_id=user.pk, detail={"count": count}
        )
    return count


def realtime_ticket_issue(*, token: AuthToken) -> str:
    raw = secrets.token_urlsafe(24)
    RealtimeTicket.objects.create(
        token=token,
        key_hash=crypto.token_hash(raw),
        expires_at=timezone.now() + dt.timedelta(seconds=settings.WS_TICKET_TTL_SECONDS),
    )
    return raw


def realtime_ticket_redeem(raw: str) -> AuthToken | None:
    """Consume a ticket once; returns the session token it stands for."""
    if not raw or len(raw) > 128:
        return None
    now = timezone.now()
    key_hash = crypto.token_hash(raw)
    with transaction.atomic():
        used = RealtimeTicket.objects.filter(key_hash=key_hash, used_at__isnull=True, expires_at__gt=now).update(
            used_at=now
        )
        if not used:
            return None
        ticket = RealtimeTicket.objects.select_related("token__user").get(key_hash=key_hash)
    token = ticket.token
    return token if token_is_live(token, now=now) else None


# --- staff login -----------------------------------------------------------


@dataclass(frozen=True)
class StaffLoginResult:
    issued: IssuedToken | None = None
    change_token: str = ""  # set when the password has expired
    enrol_token: str = ""  # set when a TOTP role has not enrolled its authenticator yet


def _throttle_attempt(username: str, ip: str) -> int:
    """Count one attempt for (username, IP) under the row's lock, before the password or
    code is looked at, and answer its number; refuse while locked or once the limit is
    used up, so concurrent guesses cannot all be evaluated against one stale count."""
    now = timezone.now()
    window = dt.timedelta(minutes=settings.LOGIN_LOCK_MINUTES)
    with transaction.atomic():
        row, _ = LoginThrottle.objects.select_for_update().get_or_create(username=username, ip=ip)
        if row.locked_until and row.locked_until > now:
            raise AuthError(AuthCode.LOCKED, retry_after_seconds=int((row.locked_until - now).total_seconds()) + 1)
        if row.first_failure_at is None or now - row.first_failure_at > window or row.locked_until:
            row.failures = 0
            row.first_failure_at = now
            row.locked_until = None
        over = row.failures >= settings.LOGIN_MAX_FAILURES
        if over:
            # Every try of the window is already taken (concurrent requests): this one is
            # not evaluated, and the window locks now.
            row.locked_until = now + window
            _audit_lockout(username, row.locked_until)
        else:
            row.failures += 1
        row.save()
    if over:
        raise AuthError(AuthCode.LOCKED, retry_after_seconds=int(window.total_seconds()))
    return row.failures


def _throttle_undo(username: str, ip: str) -> None:
    """The attempt was a step, not a guess (the password was right, the TOTP code is
    still to come): it does not count."""
    LoginThrottle.objects.filter(username=username, ip=ip, failures__gt=0).update(failures=F("failures") - 1)


def _throttle_reset(username: str, ip: str) -> None:
    LoginThrottle.objects.filter(username=username, ip=ip).delete()


def _audit_lockout(username: str, until: dt.datetime, user: User | None = None) -> None:
    if user is None:
        user = User.objects.filter(username=username).first()
    audit_record(
        action="auth.lockout",
        actor=user,
        actor_username=username[:150],
        result=AuditEvent.Result.DENIED,
        detail={"until": until.isoformat()},
    )


def _throttle_fail(
    username: str,
    ip: str,
    user: User | None,
    attempt: int,
    error: AuthError | None = None,
    action: str = "auth.login_failed",
) -> NoReturn:
    """The counted attempt ``attempt`` failed: audit it, lock at the limit, answer."""
    now = timezone.now()
    window = dt.timedelta(minutes=settings.LOGIN_LOCK_MINUTES)
    with transaction.atomic():
        audit_record(
            action=action,
            actor=user,
            actor_username=username[:150],
            result=AuditEvent.Result.FAILED,
            detail={"failures": attempt},
        )
        locked = attempt >= settings.LOGIN_MAX_FAILURES
        if locked:
            until = now + window
            if LoginThrottle.objects.filter(username=username, ip=ip, locked_until__isnull=True).update(
                locked_until=until
            ):
                _audit_lockout(username, until, user)
    if locked:
        raise AuthError(AuthCode.LOCKED, retry_after_seconds=int(window.total_seconds()))
    err = error or AuthError(AuthCode.INVALID_CREDENTIALS)
    # The same hint for unknown usernames (throttled per username and IP alike): no enumeration.
    err.detail = {
        **err.detail,
        "remaining_attempts": max(0, settings.LOGIN_MAX_FAILURES - attempt),
        "lock_minutes": settings.LOGIN_LOCK_MINUTES,
    }
    raise err


def totp_verify(user: User, code: str) -> bool:
    """Accept a code once: its time step must be newer than the last accepted one."""
    if not user.totp_secret_enc or not code or not code.isdigit() or len(code) != 6:
        return False
    totp = pyotp.TOTP(user.totp_secret)
    now = timezone.now()
    for offset in (0, -1, 1):
        at = now + dt.timedelta(seconds=offset * totp.interval)
        if secrets.compare_digest(totp.at(at), code):
            step = totp.timecode(at)
            # Conditional update: two concurrent uses of one code cannot both win.
            return User.objects.filter(pk=user.pk, totp_last_step__lt=step).update(totp_last_step=step) == 1
    return False


def staff_login(*, username: str, password: str, otp: str = "", ip: str = "", client: str = "") -> StaffLoginResult:
    username = username.strip()[:150]
    # Counted before the password is checked: concurrent guesses cannot outrun the limit.
    attempt = _throttle_attempt(username, ip)
    user = User.objects.filter(username=username).first()
    if user is not None and user.has_usable_password():
        valid = user.check_password(password)
    else:
        valid = _check_dummy(password)
    if user is None or not valid or not user.is_active or user.role not in STAFF_ROLES:
        _throttle_fail(username, ip, user, attempt)
    assert user is not None
    if user.role in TOTP_ROLES:
        if user.totp_confirmed_at is None:
            # First sign-in (or after an admin reset): the password was right; enrol an
            # authenticator before anything else. No session until a code is confirmed.
            _throttle_reset(username, ip)
            enrol = token_issue(user=user, client=client, ip=ip, kind=AuthToken.Kind.TOTP_ENROL)
            audit_record(action="auth.totp_enrolment_required", actor=user, result=AuditEvent.Result.DENIED)
            return StaffLoginResult(enrol_token=enrol.raw)
        if not otp:
            _throttle_undo(username, ip)
            raise AuthError(AuthCode.OTP_REQUIRED)
        if not totp_verify(user, otp):
            audit_record(action="auth.mfa_failed", actor=user, result=AuditEvent.Result.FAILED)
            _throttle_fail(username, ip, user, attempt, error=AuthError(AuthCode.OTP_INVALID))
        audit_record(action="auth.mfa_ok", actor=user)
    _throttle_reset(username, ip)
    return _staff_session(user, ip=ip, client=client)


def _staff_session(user: User, *, ip: str, client: str) -> StaffLoginResult:
    """After every factor passed: a password change first if it expired, else a session."""
    if password_expired(user):
        change = token_issue(user=user, client=client, ip=ip, kind=AuthToken.Kind.PASSWORD_CHANGE)
        audit_record(action="auth.password_expired", actor=user, result=AuditEvent.Result.DENIED)
        return StaffLoginResult(change_token=change.raw)
    with transaction.atomic():
        issued = token_issue(user=user, client=client, ip=ip)
        User.objects.filter(pk=user.pk).update(last_login=timezone.now())
        audit_record(action="auth.login", actor=user, object_type="token", object_id=issued.token.pk)
    return StaffLoginResult(issued=issued)


# --- TOTP enrolment ------------------------------------------------------------------
# A TOTP role signs in the first time (or after an admin reset) with its password only
# and gets a 10-minute enrolment token; with it the user asks for a fresh secret (shown
# as a QR code and as text), scans it and confirms one code. Only then is the secret
# live, and the sign-in continues (password change if due, else a session). The admin
# who created the account never sees the secret.


@dataclass(frozen=True)
class TotpEnrolment:
    secret: str
    otpauth_uri: str
    qr_svg: str  # an SVG data URI of the otpauth URI
    account: str
    issuer: str


def _enrolling_user(enrol_token: str) -> tuple[User, AuthToken]:
    token = token_authenticate(enrol_token, kind=AuthToken.Kind.TOTP_ENROL)
    if token is None:
        raise AuthError(AuthCode.TOTP_ENROL_EXPIRED)
    user: User = token.user
    if user.role not in TOTP_ROLES or user.totp_confirmed_at is not None:
        token_revoke(token=token, reason="totp_enrolment_done")
        raise AuthError(AuthCode.TOTP_ENROL_EXPIRED)
    return user, token


def totp_enrolment_start(*, enrol_token: str) -> TotpEnrolment:
    import segno

    user, _ = _enrolling_user(enrol_token)
    secret = pyotp.random_base32()
    with transaction.atomic():
        user.set_totp_secret(secret)
        user.save(update_fields=["totp_secret_enc", "totp_last_step"])
        audit_record(action="auth.totp_enrolment_start", actor=user)
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.username, issuer_name=settings.TOTP_ISSUER)
    qr = segno.make(uri, error="m").svg_data_uri(scale=5, border=2)
    return TotpEnrolment(secret=secret, otpauth_uri=uri, qr_svg=qr, account=user.username, issuer=settings.TOTP_ISSUER)


def totp_enrolment_confirm(*, enrol_token: str, code: str, ip: str = "", client: str = "") -> StaffLoginResult:
    user, token = _enrolling_user(enrol_token)
    if not user.totp_secret_enc:
        raise AuthError(AuthCode.TOTP_ENROL_NOT_STARTED)
    attempt = _throttle_attempt(user.username, ip)
    if not totp_verify(user, code.strip()):
        audit_record(action="auth.totp_enrolment_failed", actor=user, result=AuditEvent.Result.FAILED)
        _throttle_fail(user.username, ip, user, attempt, error=AuthError(AuthCode.OTP_INVALID))
    with transaction.atomic():
        User.objects.filter(pk=user.pk).update(totp_confirmed_at=timezone.now())
        token_revoke(token=token, reason="totp_enrolled")
        audit_record(action="auth.totp_enrolled", actor=user)
    _throttle_reset(user.username, ip)
    user.refresh_from_db()
    return _staff_session(user, ip=ip, client=client)


def user_totp_reset(*, actor: User, user: User) -> None:
    """An administrator clears a staff member's authenticator (lost phone): their
    sessions end and the next sign-in enrols a new one."""
    if actor.pk == user.pk:
        raise AuthError(AuthCode.ADMIN_SELF_ACTION)
    if user.role not in TOTP_ROLES:
        raise AuthError(AuthCode.TOTP_NOT_USED)
    with transaction.atomic():
        User.objects.filter(pk=user.pk).update(totp_secret_enc="", totp_last_step=0, totp_confirmed_at=None)
        user_revoke_all_tokens(user=user, reason="totp_reset")
        audit_record(action="admin.totp_reset", actor=actor, object_type="user", object_id=user.pk)


def _check_dummy(password: str) -> bool:
    check_password(password, _DUMMY_PASSWORD_HASH)
    return False


def password_change(
    *, user: User, old_password: str, new_password: str, ip: str = "", keep: AuthToken | None = None
) -> None:
    """Change the password; every session of the user ends except ``keep`` (the one
    the change was made in, when signed in). Wrong old passwords count towards the
    sign-in lockout of the username and IP: guessing here is guessing there."""
    attempt = _throttle_attempt(user.username, ip)
    if not user.check_password(old_password):
        _throttle_fail(user.username, ip, user, attempt, action="auth.password_change")
    _throttle_reset(user.username, ip)
    problems = password_problems(new_password, user=user)
    if user.check_password(new_password) and "不能与最近" not in "".join(problems):
        problems.append("新密码不能与当前密码相同")
    if problems:
        raise AuthError(AuthCode.PASSWORD_WEAK, reasons=problems)
    with transaction.atomic():
        if user.has_usable_password():
            PasswordHistory.objects.create(user=user, password=user.password)
        user.set_password(new_password)
        user.password_changed_at = timezone.now()
        user.must_change_password = False
        user.save(update_fields=["password", "password_changed_at", "must_change_password"])
        user_revoke_all_tokens(user=user, reason="password_changed", keep=keep)
        audit_record(action="auth.password_change", actor=user)


# --- patient login ---------------------------------------------------------


def _normalise_phone(phone: str) -> str:
    phone = phone.strip().replace(" ", "")
    if phone.startswith("+86"):
        phone = phone[3:]
    if not PHONE_RE.match(phone):
        raise Invalid("请输入正确的手机号", field="phone")
    return phone


def _code_hash(phone_hash: str, code: str) -> str:
    return crypto.lookup_hash(f"{phone_hash}:{code}", context="sms_code")


def sms_send(*, phone: str, ip: str = "") -> None:
    phone = _normalise_phone(phone)
    phone_hash = crypto.lookup_hash(phone, context="phone")
    now = timezone.now()
    last = SmsCode.objects.filter(phone_hash=phone_hash).order_by("-created_at").first()
    interval = settings.OTP_SEND_INTERVAL_SECONDS
    if last and (now - last.created_at).total_seconds() < interval:
        wait = interval - int((now - last.created_at).total_seconds())
        raise AuthError(AuthCode.OTP_COOLDOWN, retry_after_seconds=wait)
    # The cache gate closes the race between two concurrent sends.
    if not cache.add(f"sms-send:{phone_hash}", 1, interval):
        raise AuthError(AuthCode.OTP_COOLDOWN, retry_after_seconds=interval)
    day_start = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    if SmsCode.objects.filter(phone_hash=phone_hash, created_at__gte=day_start).count() >= settings.OTP_DAILY_LIMIT:
        raise AuthError(AuthCode.OTP_DAILY_LIMIT)
    code = f"{secrets.randbelow(10**6):06d}"
    with transaction.atomic():
        SmsCode.objects.filter(phone_hash=phone_hash, consumed_at__isnull=True).update(consumed_at=now)
        sms = SmsCode.objects.create(
            phone_hash=phone_hash,
            code_hash=_code_hash(phone_hash, code),
            created_at=now,
            expires_at=now + dt.timedelta(seconds=settings.OTP_TTL_SECONDS),
            ip=ip,
        )
        # The outbox row commits with the code; urgent: sent right after the
        # commit, past quiet hours, without waiting for the worker (ADR 0033).
        notification_enqueue(
            channel="sms",
            template="login_code",
            params={"code": code},
            recipient=phone,
            dedupe_key=f"login_code:{sms.pk}",
            urgent=True,
            now=now,
        )


def sms_verify(*, phone: str, code: str) -> str:
    """Check a code and consume it; returns the normalised phone."""
    phone = _normalise_phone(phone)
    phone_hash = crypto.lookup_hash(phone, context="phone")
    now = timezone.now()
    # The try is counted under the code's row lock before the code is compared, so
    # concurrent guesses cannot all be evaluated against one stale count.
    with transaction.atomic():
        row = SmsCode.objects.select_for_update().filter(phone_hash=phone_hash).order_by("-created_at").first()
        if row is None or row.consumed_at is not None:
            raise AuthError(AuthCode.OTP_INVALID, remaining_attempts=0)
        if row.attempts >= settings.OTP_MAX_ATTEMPTS:
            raise AuthError(AuthCode.OTP_EXHAUSTED)
        if row.expires_at <= now:
            raise AuthError(AuthCode.OTP_EXPIRED)
        row.attempts += 1
        SmsCode.objects.filter(pk=row.pk).update(attempts=row.attempts)
    if not (code.isdigit() and len(code) == 6 and secrets.compare_digest(row.code_hash, _code_hash(phone_hash, code))):
        remaining = settings.OTP_MAX_ATTEMPTS - row.attempts
        audit_record(action="auth.otp_failed", result=AuditEvent.Result.FAILED, detail={"remaining": remaining})
        if remaining <= 0:
            raise AuthError(AuthCode.OTP_EXHAUSTED)
        raise AuthError(AuthCode.OTP_INVALID, remaining_attempts=remaining)
    if not SmsCode.objects.filter(pk=row.pk, consumed_at__isnull=True).update(consumed_at=now):
        raise AuthError(AuthCode.OTP_INVALID, remaining_attempts=0)
    return phone


def _new_patient_user(*, display_name: str) -> User:
    return User.objects.create_user(username=f"p_{secrets.token_hex(8)}", display_name=display_name, role=Role.PATIENT)


def sms_login(*, phone: str, code: str, ip: str = "", client: str = "") -> IssuedToken:
    phone = sms_verify(phone=phone, code=code)
    phone_hash = crypto.lookup_hash(phone, context="phone")
    with transaction.atomic():
        user = User.objects.filter(phone_hash=phone_hash, role=Role.PATIENT).first()
        created = user is None
        if user is None:
            user = _new_patient_user(display_name=f"用户{phone[-4:]}")
            user.set_phone(phone)
            user.save(update_fields=["phone_enc", "phone_hash"])
        if not user.is_active:
            raise AuthError(AuthCode.ACCOUNT_DISABLED)
        issued = token_issue(user=user, client=client, ip=ip)
        audit_record(action="auth.login", actor=user, detail={"method": "sms", "new_account": created})
    return issued


def miniprogram_login(*, platform: str, code: str, ip: str = "") -> IssuedToken:
    if platform not in MiniProgramIdentity.Platform.values:
        raise Invalid("不支持的平台", field="platform")
    try:
        session = miniprogram_adapter().exchange(platform=platform, code=code)
    except SandboxInProduction:
        log.error("mini-program login refused: MINIPROGRAM_ADAPTER is a sandbox in production")
        raise AuthError(AuthCode.MINIPROGRAM_UNAVAILABLE) from None
    except MiniProgramUnavailable:
        raise AuthError(AuthCode.MINIPROGRAM_UNAVAILABLE) from None
    except MiniProgramLoginError as exc:
        audit_record(
            action="auth.login_failed",
            result=AuditEvent.Result.FAILED,
            detail={"method": platform, "errcode": exc.errcode},
        )
        raise AuthError(AuthCode.MINIPROGRAM_CODE_INVALID) from exc
    with transaction.atomic():
        identity = (
            MiniProgramIdentity.objects.select_related("user").filter(platform=platform, openid=session.openid).first()
        )
        if identity is None:
            user = _new_patient_user(display_name="微信用户" if platform == "weixin" else "支付宝用户")
            identity = MiniProgramIdentity.objects.create(user=user, platform=platform, openid=session.openid)
        user = identity.user
        if not user.is_active:
            raise AuthError(AuthCode.ACCOUNT_DISABLED)
        issued = token_issue(user=user, client=f"mp-{platform}", ip=ip)
        audit_record(action="auth.login", actor=user, detail={"method": platform})
    return issued


# --- administration (三权分立) ----------------------------------------------


def _require(actor: User, *roles: str) -> None:
    if actor.role not in roles:
        audit_record(action="admin.denied", actor=actor, result=AuditEvent.Result.DENIED)
        raise Forbidden()


@dataclass(frozen=True)
class CreatedStaff:
    user: User
    initial_password: str
    totp_enrolment_pending: bool  # the user enrols an authenticator at first sign-in


def user_create_staff(
    *,
    actor: User,
    username: str,
    display_name: str,
    role: str,
    phone: str = "",
    licence_no: str = "",
    years_of_practice: int = 0,
    department: str = "",
    title: str = "",
) -> CreatedStaff:
    _require(actor, Role.SYSADMIN)
    if role not in STAFF_ROLES or role in ADMIN_ROLES:
        raise AuthError(AuthCode.ADMIN_FORBIDDEN_ROLE)
    if not re.fullmatch(r"[a-zA-Z][a-zA-Z0-9_.-]{2,31}", username):
        raise Invalid("用户名须为3-32位字母、数字、下划线，以字母开头", field="username")
    if phone:
        phone = _normalise_phone(phone)
    password = generate_password()
    with transaction.atomic():
        try:
            with transaction.atomic():
                user = User.objects.create_user(
                    username=username,
                    password=password,
                    display_name=display_name,
                    role=role,
                    must_change_password=True,
                )
        except IntegrityError as exc:
            raise AuthError(AuthCode.ADMIN_USERNAME_TAKEN) from exc
        user.set_phone(phone)
        # No TOTP secret yet: the user creates their own at first sign-in, so the
        # administrator never holds it.
        user.password_changed_at = timezone.now()
        user.save()
        StaffProfile.objects.create(
            user=user,
            licence_no=licence_no,
            years_of_practice=years_of_practice,
            department=department,
            title=title,
        )
        audit_record(
            action="admin.user_create", actor=actor, object_type="user", object_id=user.pk, detail={"role": role}
        )
    return CreatedStaff(user=user, initial_password=password, totp_enrolment_pending=role in TOTP_ROLES)


def user_set_active(*, actor: User, user: User, active: bool) -> User:
    _require(actor, Role.SYSADMIN)
    if user.pk == actor.pk:
        raise AuthError(AuthCode.ADMIN_SELF_ACTION, "不能停用自己的账号")
    if user.is_admin_role:
        raise AuthError(AuthCode.ADMIN_SEPARATION_OF_DUTIES, "管理类账号须由应急流程处理")
    with transaction.atomic():
        user.is_active = active
        user.save(update_fields=["is_active"])
        if not active:
            user_revoke_all_tokens(user=user, reason="disabled")
        audit_record(
            action="admin.user_enable" if active else "admin.user_disable",
            actor=actor,
            object_type="user",
            object_id=user.pk,
        )
    return user


def user_set_role(*, actor: User, user: User, role: str) -> tuple[User, bool]:
    """Returns the user and whether they will enrol TOTP at their next sign-in."""
    _require(actor, Role.SECADMIN)
    if user.pk == actor.pk:
        raise AuthError(AuthCode.ADMIN_SELF_ACTION, "不能修改自己的角色")
    if role not in Role.values:
        raise Invalid("未知角色", field="role")
    if role in ADMIN_ROLES or user.is_admin_role or role == Role.PATIENT or user.role == Role.PATIENT:
        raise AuthError(AuthCode.ADMIN_SEPARATION_OF_DUTIES, "该角色变更违反职责分离要求")
    with transaction.atomic():
        old = user.role
        user.role = role
        user.save()
        # Permissions change at once: every session of the user ends.
        user_revoke_all_tokens(user=user, reason="role_changed")
        audit_record(
            action="admin.role_change",
            actor=actor,
            object_type="user",
            object_id=user.pk,
            detail={"from": old, "to": role},
        )
    return user, role in TOTP_ROLES and user.totp_confirmed_at is None


def user_revoke_sessions(*, actor: User, user: User) -> int:
    """An administrator signs a staff member out everywhere (a lost device, a leave).
    Not on oneself: that is /auth/logout/all."""
    _require(actor, Role.SYSADMIN, Role.SECADMIN)
    if user.pk == actor.pk:
        raise AuthError(AuthCode.ADMIN_SELF_ACTION, "不能强制下线自己，请使用“退出所有设备”")
    with transaction.atomic():
        count = user_revoke_all_tokens(user=user, reason="admin_revoked")
        audit_record(
            action="admin.sessions_revoke",
            actor=actor,
            object_type="user",
            object_id=user.pk,
            detail={"count": count},
        )
    return count


def user_unlock(*, actor: User, user: User) -> User:
    _require(actor, Role.SECADMIN)
    with transaction.atomic():
        LoginThrottle.objects.filter(username=user.username).delete()
        audit_record(action="admin.user_unlock", actor=actor, object_type="user", object_id=user.pk)
    return user


# --- patients (就诊人) and consent ----------------------------------------


def patient_add(*, owner: User, name: str, id_number: str, phone: str, relation: str) -> Patient:
    if owner.role != Role.PATIENT:
        raise Forbidden()
    name = name.strip()
    if not (1 < len(name) <= 32):
        raise Invalid("请输入真实姓名", field="name")
    if relation not in Patient.Relation.values:
        raise Invalid("请选择与本人关系", field="relation")
    try:
        info = parse_id_number(id_number)
    except InvalidIdNumber as exc:
        raise AuthError(AuthCode.ID_NUMBER_INVALID, str(exc), field="id_number") from exc
    phone = _normalise_phone(phone) if phone else ""
    with transaction.atomic():
        # Lock the owner so concurrent adds cannot exceed the family limit.
        User.objects.select_for_update().filter(pk=owner.pk).first()
        active = Patient.objects.filter(owner=owner, is_active=True)
        if (
            relation != Patient.Relation.SELF
            and active.exclude(relation=Patient.Relation.SELF).count() >= MAX_FAMILY_MEMBERS
        ):
            raise AuthError(AuthCode.FAMILY_LIMIT, f"最多添加{MAX_FAMILY_MEMBERS}位家庭成员")
        if relation == Patient.Relation.SELF and active.filter(relation=Patient.Relation.SELF).exists():
            raise AuthError(AuthCode.PATIENT_EXISTS, "本人信息已登记")
        if relation == Patient.Relation.SPOUSE and active.filter(relation=Patient.Relation.SPOUSE).exists():
            raise AuthError(AuthCode.SPOUSE_EXISTS)
        if active.filter(id_number_hash=crypto.lookup_hash(info.number, context="id_number")).exists():
            raise AuthError(AuthCode.PATIENT_EXISTS)
        patient = Patient(owner=owner, name=name, relation=relation, sex=info.sex, birth_date=info.birth_date)
        patient.set_identifiers(id_number=info.number, phone=phone)
        patient.save()
        audit_record(action="patient.create", actor=owner, object_type="patient", object_id=patient.pk)
    return patient


def patient_update(*, owner: User, patient_id: int, name: str, phone: str, relation: str) -> Patient:
    """Name, phone and relation of a family member can change; the ID number cannot
    (it is who the person is: remove and add again). 本人 stays 本人."""
    name = name.strip()
    if not (1 < len(name) <= 32):
        raise Invalid("请输入真实姓名", field="name")
    if relation not in Patient.Relation.values:
        raise Invalid("请选择与本人关系", field="relation")
    phone = _normalise_phone(phone) if phone else ""
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=owner.pk).first()
        patient = Patient.objects.select_for_update().filter(pk=patient_id, owner=owner, is_active=True).first()
        if patient is None:
            raise NotFound("就诊人")
        if (patient.relation == Patient.Relation.SELF) != (relation == Patient.Relation.SELF):
            raise AuthError(AuthCode.SELF_RELATION_FIXED)
        others = Patient.objects.filter(owner=owner, is_active=True).exclude(pk=patient.pk)
        if relation == Patient.Relation.SPOUSE and others.filter(relation=Patient.Relation.SPOUSE).exists():
            raise AuthError(AuthCode.SPOUSE_EXISTS)
        changed = [
            f for f, new in (("name", name), ("phone", phone), ("relation", relation)) if getattr(patient, f) != new
        ]
        if not changed:
            return patient
        patient.name, patient.relation = name, relation
        patient.set_identifiers(id_number=patient.id_number, phone=phone)
        patient.save()
        audit_record(
            action="patient.update",
            actor=owner,
            object_type="patient",
            object_id=patient.pk,
            detail={"fields": changed},
        )
    return patient


def patient_remove(*, owner: User, patient_id: int) -> None:
    with transaction.atomic():
        patient = Patient.objects.select_for_update().filter(pk=patient_id, owner=owner, is_active=True).first()
        if patient is None:
            raise NotFound("就诊人")
        if patient.relation == Patient.Relation.SELF:
            raise AuthError(AuthCode.CANNOT_REMOVE_SELF)
        # Soft delete: records that refer to the person (visits, orders) must remain.
        patient.is_active = False
        patient.save(update_fields=["is_active"])
        audit_record(action="patient.remove", actor=owner, object_type="patient", object_id=patient.pk)


def consent_set(*, user: User, purpose: str, granted: bool, ip: str = "") -> ConsentRecord:
    if purpose not in ConsentRecord.Purpose.values:
        raise Invalid("未知的授权事项", field="purpose")
    with transaction.atomic():
        record = ConsentRecord.objects.create(user=user, purpose=purpose, granted=granted, ip=ip)
        audit_record(
            action="consent.grant" if granted else "consent.withdraw",
            actor=user,
            object_type="consent",
            object_id=purpose,
        )
        transaction.on_commit(lambda: _consent_changed(record))
    return record


def _consent_changed(record: ConsentRecord) -> None:
    """Tell the subscribers (e.g. media stops a recording whose consent was withdrawn)."""
    for receiver, result in consent_changed.send_robust(
        sender=ConsentRecord, user=record.user, purpose=record.purpose, granted=record.granted
    ):
        if isinstance(result, Exception):
            log.error("consent_changed receiver %r failed: %r", receiver, result)
