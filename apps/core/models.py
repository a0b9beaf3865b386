from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class TransitionEvent(models.Model):
    """One status change of any lifecycle (psych assignment, psych alert,
    recording...), written by :func:`apps.core.lifecycle.transition` in the
    same transaction as the change. Append-only by use: nothing updates it."""

    object_type = models.CharField(max_length=64)  # the model's label, e.g. "psych.alert"
    object_id = models.CharField(max_length=64)
    action = models.CharField(max_length=32)  # the table's action, e.g. "acknowledge"
    from_status = models.CharField(max_length=32)
    to_status = models.CharField(max_length=32)
    # None: the system (a sweep, a media node event).
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reason = models.CharField(max_length=500, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["object_type", "object_id", "at"])]

    def __str__(self) -> str:
        return f"{self.object_type} {self.object_id}: {self.from_status} -{self.action}-> {self.to_status}"
