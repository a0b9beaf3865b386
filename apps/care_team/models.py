"""Care relationships: which staff member may see which 就诊人, why, and until when.

A recorded relationship is one row with a reason, the object it came from and
an ``until``; ending it keeps the row (who ended it and when) so the history of
who had access stays readable. IM conversations also give a live, unrecorded
relationship while both sides are members of an open visit or care-team
conversation (see selectors.py)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from apps.accounts.models import Patient
from hub.fields import EncryptedTextField


class CareRelationship(models.Model):
    class Reason(models.TextChoices):
        CONVERSATION = "conversation", "会话接诊"  # taken into care from an IM conversation
        VISIT = "visit", "问诊"  # a consultation (visits are a later issue)
        CARE_PLAN = "care_plan", "诊疗计划"  # member of the patient's care team / plan
        DUTY = "duty", "科室值班"  # department duty (on call for the department's patients)

    staff = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="care_relationships")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="care_relationships")
    reason = models.CharField(max_length=16, choices=Reason.choices)
    # The object the relationship came from, e.g. ("im_conversation", "42").
    source_type = models.CharField(max_length=32, blank=True)
    source_id = models.CharField(max_length=64, blank=True)
    department = models.CharField(max_length=64, blank=True)
    note = EncryptedTextField(blank=True)  # at most 200 characters (services); encrypted at rest (ADR 0038)
    starts_at = models.DateTimeField(default=timezone.now)
    # Access ends at this instant even if nobody ends the relationship.
    until = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    end_note = EncryptedTextField(blank=True)

    class Meta:
        constraints = [
            # One open relationship per staff, patient, reason and source; taking
            # the same patient into care again returns it.
            models.UniqueConstraint(
                fields=["staff", "patient", "reason", "source_type", "source_id"],
                condition=Q(ended_at__isnull=True),
                name="uniq_open_care_relationship",
            ),
            models.CheckConstraint(condition=Q(until__gt=models.F("starts_at")), name="care_until_after_start"),
        ]
        indexes = [models.Index(fields=["staff", "ended_at", "until"]), models.Index(fields=["patient", "ended_at"])]

    def __str__(self) -> str:
        return f"{self.staff_id} -> {self.patient_id} ({self.reason})"
