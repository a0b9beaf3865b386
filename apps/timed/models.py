"""Timed sessions: a consultation's (later a rehab session's) hard time limit.

The deadline is an absolute timestamp in the database; the server enforces it
(the web clock, a huey task at the deadline and a per-minute sweep), never a
client or an in-memory timer alone (docs/adr/0045-timed-sessions.md)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class TimedSession(models.Model):
    class Status(models.TextChoices):
        RUNNING = "running", "进行中"
        ENDED = "ended", "已结束"

    class EndReason(models.TextChoices):
        DEADLINE = "deadline", "到时自动结束"
        ENDED = "ended", "主动结束"
        TERMINATED = "terminated", "终止"

    # Who the session belongs to (registered in apps.timed.registry), e.g. ("consultation", visit public id).
    owner_kind = models.CharField(max_length=32)
    owner_id = models.CharField(max_length=64)
    # The media room closed at the end ("conv-<id>"; blank: text only) and the IM conversation closed for new messages.
    room_id = models.CharField(max_length=64, blank=True, default="")
    conversation_id = models.BigIntegerField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    duration_seconds = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    deadline = models.DateTimeField()
    # How much one extension adds (0: the product allows none); used at most once.
    extension_seconds = models.PositiveIntegerField(default=0)
    extended_at = models.DateTimeField(null=True, blank=True)
    extended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Each warning is claimed by one conditional UPDATE (... WHERE warned_x_at IS NULL): sent once.
    warned_5_at = models.DateTimeField(null=True, blank=True)
    warned_1_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=16, choices=EndReason.choices, blank=True, default="")
    # Hub topics its events go to (e.g. ["visit:<public id>", "conv:<id>"]).
    topics = models.JSONField(default=list, blank=True)
    # The room closed and its recording sealed (set at once when there is no room).
    media_closed_at = models.DateTimeField(null=True, blank=True)
    # A process closing the media holds this claim; a claim older than a minute is taken over.
    media_claimed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["owner_kind", "owner_id"]),
            models.Index(fields=["deadline"], condition=Q(status="running"), name="timed_running_deadline"),
            models.Index(
                fields=["ended_at"],
                condition=Q(status="ended", media_closed_at__isnull=True),
                name="timed_media_pending",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["owner_kind", "owner_id"], condition=Q(status="running"), name="timed_one_running_per_owner"
            )
        ]

    def __str__(self) -> str:
        return f"timed session {self.pk} ({self.owner_kind} {self.owner_id})"
