from __future__ import annotations

from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.db import models
from django.utils import timezone

from hub import crypto

from .roles import ADMIN_ROLES, STAFF_ROLES, TOTP_ROLES, Role


class UserManager(BaseUserManager["User"]):
    def create_user(self, username: str, password: str | None = None, **extra: Any) -> User:
        user = self.model(username=username, **extra)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save(using=self._db)
        return user


class User(AbstractBaseUser):
    """Every person who signs in. Patients have no usable password (SMS OTP or
    mini-program login); staff have a password and, for some roles, TOTP."""

    username = models.CharField(max_length=150, unique=True)
    display_name = models.CharField(max_length=64)
    role = models.CharField(max_length=16, choices=Role.choices, db_index=True)
    is_active = models.BooleanField(default=True)
    phone_enc = models.TextField(blank=True)
    phone_hash = models.CharField(max_length=64, blank=True, db_index=True)
    totp_secret_enc = models.TextField(blank=True)
    # Last accepted TOTP time step: a code is accepted once only.
    totp_last_step = models.BigIntegerField(default=0)
    # Set when the user confirmed a code from their authenticator; until then the
    # secret is not accepted for sign-in and the next sign-in enrols.
    totp_confirmed_at = models.DateTimeField(null=True, blank=True)
    password_changed_at = models.DateTimeField(null=True, blank=True)
    must_change_password = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "username"
    REQUIRED_FIELDS = []

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["phone_hash"],
                condition=models.Q(role="patient") & ~models.Q(phone_hash=""),
                name="uniq_patient_phone",
            )
        ]

    def __str__(self) -> str:
        return f"{self.username} ({self.role})"

    @property
    def is_staff_role(self) -> bool:
        return self.role in STAFF_ROLES

    @property
    def is_admin_role(self) -> bool:
        return self.role in ADMIN_ROLES

    @property
    def needs_totp(self) -> bool:
        return self.role in TOTP_ROLES

    @property
    def phone(self) -> str:
        return crypto.decrypt(self.phone_enc, context="user.phone") if self.phone_enc else ""

    def set_phone(self, phone: str) -> None:
        self.phone_enc = crypto.encrypt(phone, context="user.phone") if phone else ""
        self.phone_hash = crypto.lookup_hash(phone, context="phone") if phone else ""

    @property
    def totp_secret(self) -> str:
        return crypto.decrypt(self.totp_secret_enc, context="user.totp") if self.totp_secret_enc else ""

    def set_totp_secret(self, secret: str) -> None:
        self.totp_secret_enc = crypto.encrypt(secret, context="user.totp")
        self.totp_last_step = 0


class PasswordHistory(models.Model):
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="password_history")
    password = models.CharField(max_length=128)
    created_at = models.DateTimeField(default=timezone.now)


class StaffProfile(models.Model):
    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="staff_profile")
    licence_no = models.CharField(max_length=64, blank=True)
    years_of_practice = models.PositiveSmallIntegerField(default=0)
    department = models.CharField(max_length=64, blank=True)
    title = models.CharField(max_length=64, blank=True)


class Patient(models.Model):
    """A person who receives care (就诊人): the account holder or a family member.
    Identifiers are encrypted; ``*_hash`` columns serve lookups and uniqueness."""

    class Relation(models.TextChoices):
        SELF = "self", "本人"
        SPOUSE = "spouse", "配偶"
        CHILD = "child", "子女"
        PARENT = "parent", "父母"
        OTHER = "other", "其他"

    class Sex(models.TextChoices):
        MALE = "M", "男"
        FEMALE = "F", "女"

    owner = models.ForeignKey(User, on_delete=models.PROTECT, related_name="patients")
    name = models.CharField(max_length=64)
    relation = models.CharField(max_length=16, choices=Relation.choices)
    id_number_enc = models.TextField()
    id_number_hash = models.CharField(max_length=64, db_index=True)
    phone_enc = models.TextField(blank=True)
    phone_hash = models.CharField(max_length=64, blank=True, db_index=True)
    sex = models.CharField(max_length=1, choices=Sex.choices)
    birth_date = models.DateField()
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "id_number_hash"],
                condition=models.Q(is_active=True),
                name="uniq_active_patient_per_owner",
            ),
            models.UniqueConstraint(
                fields=["owner"],
                condition=models.Q(relation="self", is_active=True),
                name="uniq_self_patient",
            ),
        ]

    @property
    def id_number(self) -> str:
        return crypto.decrypt(self.id_number_enc, context="patient.id_number")

    @property
    def phone(self) -> str:
        return crypto.decrypt(self.phone_enc, context="patient.phone") if self.phone_enc else ""

    def set_identifiers(self, *, id_number: str, phone: str) -> None:
        self.id_number_enc = crypto.encrypt(id_number, context="patient.id_number")
        self.id_number_hash = crypto.lookup_hash(id_number, context="id_number")
        self.phone_enc = crypto.encrypt(phone, context="patient.phone") if phone else ""
        self.phone_hash = crypto.lookup_hash(phone, context="phone") if phone else ""


class ConsentRecord(models.Model):
    """Append-only consent history; the latest row per (user, purpose) is in force."""

    class Purpose(models.TextChoices):
        HEALTH_DATA = "health_data", "健康数据处理"
        RECORDING = "recording", "音视频录制"
        COURIER_SHARING = "courier_sharing", "向快递公司提供收件信息"
        RESEARCH = "research", "匿名化科研使用"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="consents")
    purpose = models.CharField(max_length=32, choices=Purpose.choices)
    granted = models.BooleanField()
    at = models.DateTimeField(default=timezone.now)
    ip = models.CharField(max_length=64, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "purpose", "-at"])]


class AuthToken(models.Model):
    """An opaque bearer token; only its SHA-256 is stored."""

    class Kind(models.TextChoices):
        SESSION = "session", "会话"
        PASSWORD_CHANGE = "password_change", "修改密码"
        TOTP_ENROL = "totp_enrol", "绑定身份验证器"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="tokens")
    key_hash = models.CharField(max_length=64, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.SESSION)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    last_seen_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)
    client = models.CharField(max_length=32, blank=True)
    ip = models.CharField(max_length=64, blank=True)


class RealtimeTicket(models.Model):
    """Single-use, short-lived credential for a socket's first frame (mini-programs
    cannot set headers and must never put a token in a URL)."""

    token = models.ForeignKey(AuthToken, on_delete=models.CASCADE)
    key_hash = models.CharField(max_length=64, unique=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)


class LoginThrottle(models.Model):
    """Failure counter and lock per (username, IP). Unknown usernames get rows
    too, so locked and unknown accounts answer the same way."""

    username = models.CharField(max_length=150)
    ip = models.CharField(max_length=64)
    failures = models.PositiveIntegerField(default=0)
    first_failure_at = models.DateTimeField(null=True, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["username", "ip"], name="uniq_login_throttle")]


class SmsCode(models.Model):
    phone_hash = models.CharField(max_length=64, db_index=True)
    code_hash = models.CharField(max_length=128)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    expires_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)
    consumed_at = models.DateTimeField(null=True, blank=True)
    ip = models.CharField(max_length=64, blank=True)


class MiniProgramIdentity(models.Model):
    class Platform(models.TextChoices):
        WEIXIN = "weixin", "微信小程序"
        ALIPAY = "alipay", "支付宝小程序"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="miniprogram_identities")
    platform = models.CharField(max_length=16, choices=Platform.choices)
    openid = models.CharField(max_length=128)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["platform", "openid"], name="uniq_mp_identity")]


class SandboxOutbox(models.Model):
    """What the sandbox adapters 'sent' (SMS texts, mini-program code grants),
    so the demo and tests can read them. Never used by real adapters."""

    channel = models.CharField(max_length=32)
    recipient_hash = models.CharField(max_length=64, db_index=True)
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
