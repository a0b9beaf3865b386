"""Consultations (在线复诊): departments, doctors' public profiles, schedules and
slots, visits, the prior diagnosis a visit needs (R1), the visit record, third
participants and ratings.

Rules (``../shared/domain/rules.md``): R1-R3 follow-up only, R4 identity step-up
before accepting, R5 licence shown, R9 retention, R11 consent. Every status change
goes through ``apps.core.lifecycle.transition`` with ``states.VISIT_TRANSITIONS``.
Clinical free text is encrypted at rest (``hub.fields``, ADR 0038). Money is fen.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from apps.accounts.models import Patient
from hub.fields import EncryptedTextField


def _public_id() -> str:
    return uuid.uuid4().hex[:16]


class Department(models.Model):
    """A clinical department patients can browse (心内科, 内分泌科 ...)."""

    code = models.SlugField(max_length=32, unique=True)
    name = models.CharField(max_length=32)
    intro = models.TextField(blank=True)  # public text, not clinical
    sort = models.PositiveSmallIntegerField(default=100)
    is_active = models.BooleanField(default=True)
    # The department's "next available doctor" queue takes visits without a named doctor.
    queue_enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["sort", "code"]

    def __str__(self) -> str:
        return self.name


class DoctorProfile(models.Model):
    """What patients see of a doctor (R5: licence and years shown). The licence
    number and years of practice live on ``accounts.StaffProfile``; a doctor with
    fewer than ``CONSULT_MIN_PRACTICE_YEARS`` or no licence cannot go online."""

    class Title(models.TextChoices):
        CHIEF = "chief", "主任医师"
        ASSOCIATE = "associate", "副主任医师"
        ATTENDING = "attending", "主治医师"
        RESIDENT = "resident", "住院医师"

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="doctor_profile")
    department = models.ForeignKey(Department, on_delete=models.PROTECT, related_name="doctors")
    title = models.CharField(max_length=16, choices=Title.choices, default=Title.ATTENDING)
    practice_scope = models.CharField(max_length=64, blank=True)  # 执业范围, e.g. 内科专业
    specialties = models.CharField(max_length=200, blank=True)  # 擅长, shown to patients
    intro = models.TextField(blank=True)
    # Price per visit kind, in fen; 0 = the kind is not offered.
    price_text_fen = models.PositiveIntegerField(default=0)
    price_video_fen = models.PositiveIntegerField(default=0)
    # Ratings (评价): sum and count of stars, kept with each rating in one transaction.
    rating_sum = models.PositiveIntegerField(default=0)
    rating_count = models.PositiveIntegerField(default=0)
    # Taking visits online now (the department queue offers them work).
    is_online = models.BooleanField(default=False)
    is_listed = models.BooleanField(default=True)  # shown to patients
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["department__sort", "id"]

    def __str__(self) -> str:
        return f"{self.user_id} ({self.department_id})"


class VisitKind(models.TextChoices):
    TEXT = "text", "图文问诊"
    VIDEO = "video", "视频问诊"


class Slot(models.Model):
    """One bookable period of a doctor's schedule (号源): capacity places, ``booked``
    taken. Booking is one conditional UPDATE (``booked < capacity``): never overbooked."""

    class Status(models.TextChoices):
        OPEN = "open", "可预约"
        CLOSED = "closed", "已停诊"  # the doctor stopped it; its visits are cancelled and refunded

    doctor = models.ForeignKey(DoctorProfile, on_delete=models.PROTECT, related_name="slots")
    kind = models.CharField(max_length=8, choices=VisitKind.choices)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    capacity = models.PositiveSmallIntegerField()
    booked = models.PositiveSmallIntegerField(default=0)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["starts_at", "id"]
        indexes = [models.Index(fields=["doctor", "starts_at"]), models.Index(fields=["status", "starts_at"])]
        constraints = [
            models.CheckConstraint(condition=Q(booked__lte=F("capacity")), name="slot_not_overbooked"),
            models.CheckConstraint(condition=Q(ends_at__gt=F("starts_at")), name="slot_ends_after_start"),
        ]


class PriorRecord(models.Model):
    """A diagnosis on file that makes a visit a follow-up (R1): from the hospital
    (HIS adapter) or uploaded by the patient (a discharge summary, an outpatient
    record) and reviewed by the doctor before accepting. Never merged: each row
    keeps its source."""

    class Source(models.TextChoices):
        HIS = "his", "本院记录"
        UPLOAD = "upload", "患者上传"

    class Review(models.TextChoices):
        PENDING = "pending", "待医生审核"
        ACCEPTED = "accepted", "医生已确认"
        REJECTED = "rejected", "医生未采纳"

    public_id = models.CharField(max_length=16, unique=True, default=_public_id)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="prior_records")
    source = models.CharField(max_length=8, choices=Source.choices)
    # The HIS's own id of the record (idempotent import), blank for uploads.
    his_ref = models.CharField(max_length=64, blank=True)
    hospital = models.CharField(max_length=64, blank=True)
    visit_date = models.DateField(null=True, blank=True)
    icd10_code = models.CharField(max_length=16, blank=True)
    diagnosis = EncryptedTextField(blank=True)
    summary = EncryptedTextField(blank=True)
    # Uploaded pages: IM-style attachments stored by this app (ids), at most 9.
    files = models.JSONField(default=list, blank=True)
    review = models.CharField(max_length=8, choices=Review.choices)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_note = EncryptedTextField(blank=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["patient", "his_ref"], condition=Q(source="his"), name="uniq_prior_record_his_ref"
            )
        ]


class Visit(models.Model):
    """One consultation: booked (to a doctor's slot or a department's queue), paid,
    waiting, accepted by the doctor (复诊 confirmed, identity stepped up), called in
    (the room and the timed session open), ended; or cancelled / terminated with a
    refund."""

    class Status(models.TextChoices):
        PENDING_PAYMENT = "pending_payment", "待支付"
        WAITING = "waiting", "候诊中"  # paid; in the doctor's or the department's queue
        ACCEPTED = "accepted", "医生已接诊"  # 复诊 confirmed and the doctor's identity checked (R1, R4)
        IN_PROGRESS = "in_progress", "问诊中"  # called in: the room and the timed session are open
        ENDED = "ended", "已结束"  # the session ended (the doctor, or its deadline)
        CANCELLED = "cancelled", "已取消"  # by the patient (refund by rule) or unpaid in time
        TERMINATED = "terminated", "已终止"  # the doctor ended it (R2): full refund, advice to go offline

    class TerminateReason(models.TextChoices):
        FIRST_VISIT = "first_visit", "初诊患者，不适合在线复诊"
        CONDITION_CHANGED = "condition_changed", "病情变化，需线下就诊"
        NEEDS_EXAM = "needs_exam", "需要线下检查"
        EMERGENCY = "emergency", "病情紧急，请立即线下急诊"
        OTHER = "other", "其他原因"

    class StepUpMethod(models.TextChoices):
        PASSWORD = "password", "登录密码"
        TOTP = "totp", "动态验证码"

    public_id = models.CharField(max_length=16, unique=True, default=_public_id)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="visits")
    account = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="booked_visits")
    department = models.ForeignKey(Department, on_delete=models.PROTECT, related_name="visits")
    # Null while in the department queue ("next available doctor") until a doctor takes it.
    doctor = models.ForeignKey(DoctorProfile, null=True, blank=True, on_delete=models.PROTECT, related_name="visits")
    slot = models.ForeignKey(Slot, null=True, blank=True, on_delete=models.PROTECT, related_name="visits")
    kind = models.CharField(max_length=8, choices=VisitKind.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING_PAYMENT)
    price_fen = models.PositiveIntegerField()
    order_no = models.CharField(max_length=32, blank=True)  # commerce order paying for it
    # What the patient writes when booking (clinical: encrypted).
    chief_complaint = EncryptedTextField()
    # R1: the prior diagnosis this follow-up rests on.
    prior_record = models.ForeignKey(
        PriorRecord, null=True, blank=True, on_delete=models.PROTECT, related_name="visits"
    )
    # R3: a child under 6 needs a guardian present, recorded at booking.
    guardian_name = models.CharField(max_length=64, blank=True)
    guardian_relation = models.CharField(max_length=16, blank=True)
    guardian_phone = EncryptedTextField(blank=True)
    reschedule_count = models.PositiveSmallIntegerField(default=0)
    # Queue order: when it was paid (or rescheduled into a new slot).
    queued_at = models.DateTimeField(null=True, blank=True)
    # R4: the doctor's identity step-up for this visit, recorded before accepting.
    step_up_at = models.DateTimeField(null=True, blank=True)
    step_up_method = models.CharField(max_length=8, choices=StepUpMethod.choices, blank=True)
    followup_confirmed_at = models.DateTimeField(null=True, blank=True)  # R1: the doctor confirmed 复诊
    accepted_at = models.DateTimeField(null=True, blank=True)
    called_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=16, blank=True)  # doctor / deadline / terminated / cancelled ...
    terminate_reason = models.CharField(max_length=24, choices=TerminateReason.choices, blank=True)
    terminate_note = EncryptedTextField(blank=True)
    # The visit's IM conversation (its media room is ``conv-<id>``) and timed session.
    conversation_id = models.BigIntegerField(null=True, blank=True)
    timed_session_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["doctor", "status", "queued_at"]),
            models.Index(fields=["department", "status", "queued_at"]),
            models.Index(fields=["account", "created_at"]),
            models.Index(fields=["patient", "status"]),
        ]


class VisitRecord(models.Model):
    """The online visit record (EMR, kept 15 years, R9): written by the doctor,
    signed through the CA (``apps.pharmacy.ca``), read by the patient as the summary."""

    visit = models.OneToOneField(Visit, on_delete=models.PROTECT, related_name="record")
    chief_complaint = EncryptedTextField(blank=True)
    present_history = EncryptedTextField(blank=True)
    past_history = EncryptedTextField(blank=True)
    icd10_code = models.CharField(max_length=16, blank=True)
    diagnosis = EncryptedTextField(blank=True)
    advice = EncryptedTextField(blank=True)
    # Private notes of the doctor during the visit (never shown to the patient).
    notes = EncryptedTextField(blank=True)
    signed_at = models.DateTimeField(null=True, blank=True)
    signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    content_hash = models.CharField(max_length=64, blank=True)  # SHA-256 of the canonical content signed
    signature = models.TextField(blank=True)
    signature_algorithm = models.CharField(max_length=32, blank=True)  # the CA's (0003_clinical)
    certificate_serial = models.CharField(max_length=64, blank=True)
    retain_until = models.DateField(null=True, blank=True)  # signed date + 15 years (R9)
    updated_at = models.DateTimeField(default=timezone.now)


class Invitation(models.Model):
    """A third participant (family member, interpreter, another doctor) invited into
    a visit: a single-use code that expires; accepting makes them a member of the
    visit's conversation (and so of its room); removing them ends their access at once."""

    class Role(models.TextChoices):
        FAMILY = "family", "家属"
        INTERPRETER = "interpreter", "翻译"
        DOCTOR = "doctor", "会诊医生"

    class Status(models.TextChoices):
        PENDING = "pending", "待加入"
        JOINED = "joined", "已加入"
        REMOVED = "removed", "已移出"
        REVOKED = "revoked", "已撤销"
        EXPIRED = "expired", "已过期"

    visit = models.ForeignKey(Visit, on_delete=models.PROTECT, related_name="invitations")
    role = models.CharField(max_length=16, choices=Role.choices)
    code_hash = models.CharField(max_length=64, unique=True)  # keyed hash; the code is shown once
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    # Another doctor invited by user id; family and interpreters redeem the code with their own account.
    invitee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="visit_invitations"
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    expires_at = models.DateTimeField()
    joined_at = models.DateTimeField(null=True, blank=True)
    removed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)


class Rating(models.Model):
    """The patient's 评价 of an ended visit: once per visit."""

    visit = models.OneToOneField(Visit, on_delete=models.PROTECT, related_name="rating")
    stars = models.PositiveSmallIntegerField()
    tags = models.JSONField(default=list, blank=True)  # from a fixed list (services)
    comment = EncryptedTextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(stars__gte=1, stars__lte=5), name="rating_stars_1_5")]


__all__ = [
    "Department",
    "DoctorProfile",
    "Invitation",
    "PriorRecord",
    "Rating",
    "Slot",
    "Visit",
    "VisitKind",
    "VisitRecord",
]
