from __future__ import annotations

from django.db import models


class AuditEvent(models.Model):
    """One append-only audit record. ``hash`` chains over the previous row's hash
    so that any edit, insert or deletion in the middle is detectable."""

    class Result(models.TextChoices):
        OK = "ok", "成功"
        DENIED = "denied", "拒绝"
        FAILED = "failed", "失败"

    at = models.DateTimeField(db_index=True)
    actor_id = models.BigIntegerField(null=True, db_index=True)
    actor_username = models.CharField(max_length=150, blank=True)
    actor_role = models.CharField(max_length=32, blank=True)
    ip = models.CharField(max_length=64, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    result = models.CharField(max_length=16, choices=Result.choices, default=Result.OK)
    request_id = models.CharField(max_length=64, blank=True)
    detail = models.JSONField(default=dict)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["id"]


class AuditHead(models.Model):
    """Single row holding the chain's tip; locking it serialises appends. ``mac``
    seals (last_id, last_hash) under the audit key, so whoever cuts rows off the
    tail cannot move the head back without the key; on PostgreSQL a trigger also
    refuses deleting the head or moving last_id backwards."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    last_hash = models.CharField(max_length=64)
    last_id = models.BigIntegerField(default=0)
    mac = models.CharField(max_length=64, blank=True)
