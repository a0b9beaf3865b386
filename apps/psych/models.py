from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from apps.accounts.models import Patient
from hub.fields import EncryptedJSONField, EncryptedTextField


class ScaleDefinition(models.Model):
    """One published version of a scale, stored as data (see definitions.py).
    Rows are never edited: assignments point at the exact version used."""

    code = models.CharField(max_length=32)
    version = models.PositiveIntegerField()
    name = models.CharField(max_length=128)
    data = models.JSONField()
    content_hash = models.CharField(max_length=64)
    is_active = models.BooleanField(default=True)  # inactive: kept for old results, not assignable
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["code", "version"], name="uniq_scale_version")]

    def __str__(self) -> str:
        return f"{self.code} v{self.version}"


class Assignment(models.Model):
    class Status(models.TextChoices):
        ASSIGNED = "assigned", "待填写"  # sent to the patient, nothing answered yet
        IN_PROGRESS = "in_progress", "填写中"  # at least one answer saved; resumable
        SUBMITTED = "submitted", "已完成"  # scored; answers frozen in the Result
        CANCELLED = "cancelled", "已取消"  # withdrawn by the doctor before submission

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="psych_assignments")
    scale = models.ForeignKey(ScaleDefinition, on_delete=models.PROTECT, related_name="assignments")
    assigned_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    # Scales assigned in one action share a batch (one IM card, one notification).
    batch = models.CharField(max_length=32, db_index=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ASSIGNED)
    due_at = models.DateTimeField()
    # The doctor's note to the patient (at most 200 characters, services.assignments_create).
    # This and every answer, note and flag below are encrypted at rest (ADR 0038); the
    # scores, bands, codes and statuses the product queries stay plain columns.
    note = EncryptedTextField(blank=True)
    # Answers saved as the patient goes (item no -> option value); frozen copy in Result.
    draft_answers = EncryptedJSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["patient", "-created_at"]), models.Index(fields=["assigned_by", "status"])]


class Result(models.Model):
    """The scored submission. Append-only: a database trigger refuses UPDATE and
    DELETE, so answers and scores cannot change after submit."""

    assignment = models.OneToOneField(Assignment, on_delete=models.PROTECT, related_name="result")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="psych_results")
    scale = models.ForeignKey(ScaleDefinition, on_delete=models.PROTECT, related_name="+")
    scale_code = models.CharField(max_length=32, db_index=True)
    answers = EncryptedJSONField()  # {"1": 0, "2": 3, ...} option values
    raw_score = models.IntegerField()
    standard_score = models.IntegerField()
    norm = models.CharField(max_length=16)
    norm_label = models.CharField(max_length=64)
    rounding = models.CharField(max_length=16)
    band_code = models.CharField(max_length=32)
    band_label = models.CharField(max_length=32)
    band_severity = models.PositiveSmallIntegerField()
    flags = EncryptedJSONField(default=list)
    critical = EncryptedJSONField(default=list)
    submitted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    submitted_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["patient", "scale_code", "submitted_at"])]


class ResultReview(models.Model):
    """The doctor's note and signature on a result; one per result, final once
    signed (append-only like the result). ``signature`` is an HMAC over the
    result's scores and the note, checked when the report is shown."""

    result = models.OneToOneField(Result, on_delete=models.PROTECT, related_name="review")
    note = EncryptedTextField()
    signed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    signed_at = models.DateTimeField(default=timezone.now)
    signature = models.CharField(max_length=64)


class Alert(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "待处理"  # raised, waiting for the assigning doctor
        ESCALATED = "escalated", "已升级"  # not acknowledged in time; sent to the on-duty doctor
        ACKNOWLEDGED = "acknowledged", "已确认"  # a doctor took responsibility
        CLOSED = "closed", "已关闭"  # followed up and closed with a note

    result = models.ForeignKey(Result, on_delete=models.PROTECT, related_name="alerts")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="psych_alerts")
    rule_code = models.CharField(max_length=32)
    item = models.PositiveSmallIntegerField()
    value = models.IntegerField()
    label = models.CharField(max_length=128)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    doctor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    department = models.CharField(max_length=64, blank=True)
    ack_deadline = models.DateTimeField(db_index=True)
    escalated_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    escalated_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["result", "rule_code"], name="uniq_alert_per_rule")]
        indexes = [models.Index(fields=["status", "ack_deadline"])]


class AlertEvent(models.Model):
    """Every action on an alert, in order (the alert's own log; the audit chain
    records the same actions)."""

    class Action(models.TextChoices):
        RAISED = "raised", "触发预警"
        NOTIFIED = "notified", "已通知"
        ESCALATED = "escalated", "升级至值班医生"
        NO_ON_DUTY = "no_on_duty", "无值班医生，升级待重试"
        ACKNOWLEDGED = "acknowledged", "已确认"
        CLOSED = "closed", "已关闭"

    alert = models.ForeignKey(Alert, on_delete=models.PROTECT, related_name="events")
    action = models.CharField(max_length=16, choices=Action.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    at = models.DateTimeField(default=timezone.now)
    note = EncryptedTextField(blank=True)  # at most 500 characters (services._alert_log)
    detail = EncryptedJSONField(default=dict)


class DutyShift(models.Model):
    """The on-duty doctor of a department for a time window (roster)."""

    department = models.CharField(max_length=64, db_index=True)
    doctor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="psych_duty_shifts")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["department", "starts_at", "ends_at"])]
        constraints = [
            models.CheckConstraint(condition=models.Q(ends_at__gt=models.F("starts_at")), name="duty_window")
        ]
