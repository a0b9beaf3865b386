"""Recordings of consultation rooms: where the file is, how long it is kept."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class Recording(models.Model):
    class Status(models.TextChoices):
        RECORDING = "recording", "录制中"  # the media node is writing the file
        COMPLETE = "complete", "已完成"  # closed normally; manifest written by the recorder
        RECOVERED = "recovered", "已恢复"  # the recorder died; manifest rebuilt from the cut file

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    room_id = models.CharField(max_length=64, db_index=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RECORDING)
    # Relative to settings.RECORDINGS_ROOT; never taken from a request.
    storage_path = models.CharField(max_length=255, unique=True)
    # The media node writing it (empty: embedded); sealed from the cut file if that node is lost.
    node = models.CharField(max_length=64, blank=True, default="")
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    duration_seconds = models.FloatField(default=0)
    size = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    manifest = models.JSONField(default=dict, blank=True)
    participants = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="recordings", blank=True)
    # Audio/video of care is kept at least 3 years; a legal hold suspends deletion.
    retain_until = models.DateField()
    legal_hold = models.BooleanField(default=False)
    legal_hold_reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["retain_until", "legal_hold"])]

    def __str__(self) -> str:
        return f"recording {self.public_id} ({self.room_id})"


# (status, action) -> next status, applied by apps.core.lifecycle.transition.
# A sealed recording never changes status again.
_S = Recording.Status
RECORDING_TRANSITIONS: dict[tuple[str, str], str] = {
    (_S.RECORDING, "finish"): _S.COMPLETE,  # the recorder sealed the file
    (_S.RECORDING, "recover"): _S.RECOVERED,  # sealed from the cut file (recorder or node died)
}
