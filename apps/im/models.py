from __future__ import annotations

from typing import cast

from django.conf import settings
from django.db import models
from django.utils import timezone

from hub.fields import EncryptedJSONField


class Conversation(models.Model):
    class Kind(models.TextChoices):
        VISIT = "visit", "问诊"  # doctor-patient consultation
        CARE_TEAM = "care_team", "诊疗团队"  # a patient with a care team (全病程, rehab)
        SERVICE = "service", "客服"  # customer service
        GROUP = "group", "群聊"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    title = models.CharField(max_length=64, blank=True)
    # The domain object this conversation belongs to (e.g. visit 42).
    ref_type = models.CharField(max_length=32, blank=True)
    ref_id = models.CharField(max_length=64, blank=True)
    # Highest seq handed out; incremented in the insert's own statement, so
    # seqs are gap-free per conversation.
    last_seq = models.BigIntegerField(default=0)
    last_message_at = models.DateTimeField(null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["ref_type", "ref_id"])]


class Member(models.Model):
    class Role(models.TextChoices):
        PATIENT = "patient", "患者"
        STAFF = "staff", "医护"
        AGENT = "agent", "客服"
        OBSERVER = "observer", "旁观"

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="im_memberships")
    role = models.CharField(max_length=16, choices=Role.choices)
    joined_at = models.DateTimeField(default=timezone.now)
    left_at = models.DateTimeField(null=True, blank=True)
    # Cumulative receipts: everything up to this seq was delivered / read.
    delivered_seq = models.BigIntegerField(default=0)
    read_seq = models.BigIntegerField(default=0)
    last_notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["conversation", "user"], name="uniq_member")]
        indexes = [models.Index(fields=["user", "left_at"])]


class Message(models.Model):
    class Kind(models.TextChoices):
        TEXT = "text", "文字"
        IMAGE = "image", "图片"
        VOICE = "voice", "语音"
        FILE = "file", "文件"
        CARD = "card", "卡片"
        SYSTEM = "system", "系统消息"
        RECALL = "recall", "撤回"

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    seq = models.BigIntegerField()
    sender = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # Encrypted at rest (ADR 0038): never filtered or searched in SQL.
    body = EncryptedJSONField(default=dict)
    client_msg_id = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    recalled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["conversation", "seq"], name="uniq_conv_seq"),
            models.UniqueConstraint(fields=["sender", "client_msg_id"], name="uniq_sender_client_msg"),
        ]


def body_field() -> EncryptedJSONField:
    """``Message.body``'s field, for the raw SQL that writes it (``seal``) and reads it
    (``unseal``): the socket's group-commit insert and the resume query."""
    return cast(EncryptedJSONField, Message._meta.get_field("body"))


class Attachment(models.Model):
    class Kind(models.TextChoices):
        IMAGE = "image", "图片"
        VOICE = "voice", "语音"
        FILE = "file", "文件"

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="attachments")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    content_type = models.CharField(max_length=64)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    filename = models.CharField(max_length=128, blank=True)
    storage_path = models.CharField(max_length=255)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
