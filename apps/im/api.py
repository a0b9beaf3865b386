from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.http import FileResponse, HttpRequest
from ninja import File, Form, Router, Status
from ninja.files import UploadedFile

from hub.errors import HubCode, Invalid, errors

from . import selectors, services
from .errors import ImCode, ImError
from .models import Attachment
from .schemas import (
    AttachmentOut,
    ConversationDetailOut,
    ConversationListOut,
    MessageOut,
    MessagePageOut,
    ReadIn,
    ReceiptOut,
    SendIn,
)

router = Router()


def _user(request: HttpRequest) -> Any:
    return request.auth  # type: ignore[attr-defined]


@router.get(
    "/conversations",
    response={200: ConversationListOut, **errors(HubCode.VALIDATION_ERROR)},
    summary="会话列表（按最近消息排序，含未读数）",
)
def conversation_list(request: HttpRequest, before: dt.datetime | None = None, limit: int = 30) -> dict[str, Any]:
    return selectors.conversations_of(user=_user(request), before=before, limit=limit)


@router.get(
    "/conversations/{conversation_id}",
    response={200: ConversationDetailOut, **errors(ImCode.NOT_MEMBER, HubCode.VALIDATION_ERROR)},
    summary="会话详情与成员",
)
def conversation_detail(request: HttpRequest, conversation_id: int) -> dict[str, Any]:
    services.require_member(user=_user(request), conversation_id=conversation_id)
    return {"id": conversation_id, "members": selectors.members_of(conversation_id)}


@router.get(
    "/conversations/{conversation_id}/messages",
    response={200: MessagePageOut, **errors(ImCode.NOT_MEMBER, HubCode.VALIDATION_ERROR)},
    summary="历史消息（按 seq 翻页）",
)
def message_list(
    request: HttpRequest,
    conversation_id: int,
    after_seq: int | None = None,
    before_seq: int | None = None,
    limit: int = 50,
) -> dict[str, Any]:
    services.require_member(user=_user(request), conversation_id=conversation_id)
    if after_seq is not None:
        return selectors.messages_after(conversation_id=conversation_id, after_seq=after_seq, limit=limit)
    return selectors.messages_before(conversation_id=conversation_id, before_seq=before_seq, limit=limit)


@router.post(
    "/conversations/{conversation_id}/messages",
    response={
        201: MessageOut,
        200: MessageOut,
        **errors(
            HubCode.NOT_FOUND,
            ImCode.TOO_LONG,
            ImCode.ATTACHMENT_INVALID,
            ImCode.KIND_FORBIDDEN,
            ImCode.CLIENT_MSG_ID_REUSED,
            ImCode.CONVERSATION_CLOSED,
            HubCode.VALIDATION_ERROR,
        ),
    },
    summary="发送消息",
)
def message_send(request: HttpRequest, conversation_id: int, payload: SendIn) -> Status[dict[str, Any]]:
    result = services.message_send(
        conversation_id=conversation_id,
        sender=_user(request),
        kind=payload.kind,
        body=payload.body,
        client_msg_id=payload.client_msg_id,
    )
    return Status(200 if result.duplicate else 201, result.message)


@router.post(
    "/conversations/{conversation_id}/read",
    response={200: ReceiptOut, **errors(HubCode.NOT_FOUND, HubCode.VALIDATION_ERROR)},
    summary="标记已读（累计）",
)
def mark_read(request: HttpRequest, conversation_id: int, payload: ReadIn) -> dict[str, int]:
    return services.receipt_update(user=_user(request), conversation_id=conversation_id, read_seq=payload.seq)


@router.post(
    "/conversations/{conversation_id}/messages/{seq}/recall",
    response={
        200: MessageOut,
        **errors(
            HubCode.NOT_FOUND,
            ImCode.NOT_MEMBER,
            ImCode.ALREADY_RECALLED,
            ImCode.RECALL_EXPIRED,
            HubCode.VALIDATION_ERROR,
        ),
    },
    summary="撤回消息（2分钟内）",
)
def recall(request: HttpRequest, conversation_id: int, seq: int) -> dict[str, Any]:
    return services.message_recall(user=_user(request), conversation_id=conversation_id, seq=seq)


# --- attachments -----------------------------------------------------------------

LIMITS = {"image": 10 * 1024 * 1024, "voice": 2 * 1024 * 1024, "file": 20 * 1024 * 1024}
VOICE_MAX_MS = 60_000


def sniff(head: bytes) -> tuple[str, str] | None:
    """(kind, content type) from the first bytes; the client's claim is ignored."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image", "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image", "image/png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image", "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image", "image/webp"
    if head.startswith(b"%PDF-"):
        return "file", "application/pdf"
    if head.startswith(b"#!AMR"):
        return "voice", "audio/amr"
    if head.startswith(b"#!SILK") or head.startswith(b"\x02#!SILK"):
        return "voice", "audio/silk"
    if head.startswith(b"ID3") or head[:2] in (b"\xff\xfb", b"\xff\xf3"):
        return "voice", "audio/mpeg"
    if head[:2] in (b"\xff\xf1", b"\xff\xf9"):
        return "voice", "audio/aac"
    if head[4:8] == b"ftyp" and head[8:11] in (b"M4A", b"mp4", b"iso"):
        return "voice", "audio/mp4"
    return None


@router.post(
    "/conversations/{conversation_id}/attachments",
    response={
        201: AttachmentOut,
        **errors(ImCode.NOT_MEMBER, ImCode.ATTACHMENT_TYPE, ImCode.ATTACHMENT_TOO_LARGE, HubCode.VALIDATION_ERROR),
    },
    summary="上传附件",
)
def attachment_upload(
    request: HttpRequest,
    conversation_id: int,
    file: File[UploadedFile],
    duration_ms: Form[int | None] = None,
) -> Status[dict[str, Any]]:
    user = _user(request)
    services.require_member(user=user, conversation_id=conversation_id)
    head = file.read(16)
    file.seek(0)
    sniffed = sniff(head)
    if sniffed is None:
        raise ImError(ImCode.ATTACHMENT_TYPE)
    kind, content_type = sniffed
    size = file.size or 0
    if size <= 0 or size > LIMITS[kind]:
        raise ImError(
            ImCode.ATTACHMENT_TOO_LARGE, f"文件过大（上限{LIMITS[kind] // (1024 * 1024)}MB）", max=LIMITS[kind]
        )
    if kind == "voice" and (duration_ms is None or not (0 < duration_ms <= VOICE_MAX_MS)):
        raise Invalid("语音时长须在1-60秒之间", field="duration_ms")
    root = Path(settings.UPLOAD_ROOT)
    relative = Path("im") / str(conversation_id) / uuid.uuid4().hex
    target = root / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with open(target, "wb") as out:
        for chunk in file.chunks():
            digest.update(chunk)
            out.write(chunk)
    try:
        with transaction.atomic():
            att = Attachment.objects.create(
                conversation_id=conversation_id,
                owner=user,
                kind=kind,
                content_type=content_type,
                size=size,
                sha256=digest.hexdigest(),
                filename=(file.name or "")[:128],
                storage_path=str(relative),
                duration_ms=duration_ms if kind == "voice" else None,
            )
    except Exception:
        target.unlink(missing_ok=True)  # nothing half-written
        raise
    return Status(
        201,
        {
            "id": att.pk,
            "kind": kind,
            "content_type": content_type,
            "size": size,
            "filename": att.filename,
            "duration_ms": att.duration_ms,
        },
    )


@router.get(
    "/attachments/{attachment_id}",
    response={**errors(HubCode.NOT_FOUND, HubCode.VALIDATION_ERROR)},
    summary="下载附件（鉴权并审计）",
    openapi_extra={
        "responses": {
            200: {
                "description": "附件内容（Content-Type 为识别出的类型）",
                "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
            }
        }
    },
)
def attachment_fetch(request: HttpRequest, attachment_id: int) -> FileResponse:
    att = services.attachment_check_access(user=_user(request), attachment_id=attachment_id)
    response = FileResponse(open(Path(settings.UPLOAD_ROOT) / att.storage_path, "rb"), content_type=att.content_type)
    response["Content-Disposition"] = "attachment" if att.kind == "file" else "inline"
    response["X-Content-Type-Options"] = "nosniff"
    return response
