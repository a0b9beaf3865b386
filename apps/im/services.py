"""Writes of the IM domain. Other apps create conversations and post cards
through these functions (``conversation_for_pair``, ``card_post``).

Delivery guarantee (docs/adr/0006-im-delivery.md): a message gets a gap-free
per-conversation ``seq`` in the same statement that inserts it; a retried send
with the same ``client_msg_id`` returns the first ack; the ack and the fan-out
happen only after commit; clients resume from their last seq."""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.db.models.functions import Greatest
from django.utils import timezone

from apps.accounts.models import User
from apps.audit.services import audit_record
from hub.errors import ApiError, HubCode, HubError, Invalid, NotFound
from hub.realtime.fields import BIGINT_MAX
from hub.realtime.sessions import publish_on_commit, revoke_topic_on_commit

from .errors import ImCode, ImError
from .models import Attachment, Conversation, Member, Message
from .models import body_field as _body_field
from .signals import member_removed

log = logging.getLogger(__name__)

RECALL_WINDOW = dt.timedelta(minutes=2)
TEXT_MAX = 4000
CLIENT_KINDS = {Message.Kind.TEXT, Message.Kind.IMAGE, Message.Kind.VOICE, Message.Kind.FILE}
CARD_TYPES = {"prescription", "scale_assignment", "video_invite", "order", "followup_task", "report", "notice"}
CARD_TYPES.add("consult_advice")  # consultations (R2): the advice to go offline when a visit is terminated


def topic_for(conversation_id: int) -> str:
    return f"conv:{conversation_id}"


def message_view(m: Message) -> dict[str, Any]:
    recalled = m.recalled_at is not None
    return {
        "conversation": m.conversation_id,
        "seq": m.seq,
        "sender": m.sender_id,
        "kind": m.kind,
        "body": {} if recalled else m.body,
        "client_msg_id": m.client_msg_id,
        "created_at": m.created_at.isoformat(),
        "recalled": recalled,
    }


# --- conversations -------------------------------------------------------------


def conversation_create(
    *,
    kind: str,
    members: list[tuple[User, str]],
    title: str = "",
    ref_type: str = "",
    ref_id: str = "",
) -> Conversation:
    with transaction.atomic():
        conv = Conversation.objects.create(kind=kind, title=title[:64], ref_type=ref_type, ref_id=str(ref_id))
        Member.objects.bulk_create([Member(conversation=conv, user=u, role=role) for u, role in members])
    return conv


def conversation_for_pair(
    *, staff: User, patient: User, kind: str = Conversation.Kind.VISIT, ref_type: str = "", ref_id: str = ""
) -> Conversation:
    """The open conversation of this staff member with this patient for the
    given reference, created on first use."""
    with transaction.atomic():
        existing = (
            Conversation.objects.select_for_update()
            .filter(kind=kind, ref_type=ref_type, ref_id=str(ref_id), closed_at__isnull=True)
            # Both still members: a card never goes where one of them has left.
            .filter(members__user=staff, members__left_at__isnull=True)
            .filter(members__user=patient, members__left_at__isnull=True)
            .first()
        )
        if existing is not None:
            return existing
        return conversation_create(
            kind=kind,
            members=[(staff, Member.Role.STAFF), (patient, Member.Role.PATIENT)],
            title=f"{staff.display_name} · {patient.display_name}",
            ref_type=ref_type,
            ref_id=ref_id,
        )


def conversation_close(*, conversation_id: int, actor: User | None = None, reason: str = "") -> bool:
    """Close the conversation for new messages (sends, cards and system messages are
    refused with ``im.conversation_closed``; its history stays readable). Idempotent:
    ``False`` when it was already closed. Members are told with ``im.closed`` after commit."""
    with transaction.atomic():
        closed = Conversation.objects.filter(pk=conversation_id, closed_at__isnull=True).update(
            closed_at=timezone.now()
        )
        if not closed:
            return False
        audit_record(
            action="im.conversation_close",
            actor=actor,
            actor_username="" if actor is not None else "system",
            object_type="conversation",
            object_id=conversation_id,
            detail={"reason": reason} if reason else None,
        )
        publish_on_commit(topic_for(conversation_id), "im.closed", {"conversation": conversation_id, "reason": reason})
    return True


def member_add(*, conversation: Conversation, user: User, role: str) -> Member:
    member, created = Member.objects.get_or_create(conversation=conversation, user=user, defaults={"role": role})
    if not created and member.left_at is not None:
        member.left_at = None
        member.save(update_fields=["left_at"])
    return member


@transaction.atomic
def member_remove(*, conversation: Conversation, user: User, actor: User | None = None, reason: str = "") -> bool:
    """End ``user``'s membership (idempotent; ``False`` if not an active member). Their
    open sockets stop receiving the conversation at once (other topics keep flowing)
    and may not subscribe to it again."""
    member = (
        Member.objects.select_for_update().filter(conversation=conversation, user=user, left_at__isnull=True).first()
    )
    if member is None:
        return False
    member.left_at = timezone.now()
    member.save(update_fields=["left_at"])
    audit_record(
        action="im.member_remove",
        actor=actor,
        object_type="conversation",
        object_id=conversation.pk,
        detail={"user": user.pk, "reason": reason} if reason else {"user": user.pk},
    )
    revoke_topic_on_commit(user_id=user.pk, topic=f"conv:{conversation.pk}", reason=reason or "member_removed")
    _member_removed_on_commit(conversation_id=conversation.pk, user_id=user.pk, reason=reason or "member_removed")
    return True


def _member_removed_on_commit(*, conversation_id: int, user_id: int, reason: str) -> None:
    """Once the removal is durable, tell the subscribers (media ends the user's video in
    the conversation's room); a receiver that fails is logged and never undoes it."""

    def send() -> None:
        for receiver, result in member_removed.send_robust(
            sender=Member, conversation_id=conversation_id, user_id=user_id, reason=reason
        ):
            if isinstance(result, Exception):
                log.error("member_removed receiver %r failed: %r", receiver, result)

    transaction.on_commit(send)


# --- sending -------------------------------------------------------------------


@dataclass(frozen=True)
class SendResult:
    message: dict[str, Any]
    duplicate: bool
    # Members to tell on their own user topic (``im.notify``), sender excluded.
    notify: tuple[int, ...] = ()


def _validate_body(*, conversation_id: int, sender: User, kind: str, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise Invalid("消息内容格式错误")
    if kind == Message.Kind.TEXT:
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            raise Invalid("消息内容不能为空")
        if len(text) > TEXT_MAX:
            raise ImError(ImCode.TOO_LONG, f"消息不能超过{TEXT_MAX}字")
        return {"text": text}
    if kind in (Message.Kind.IMAGE, Message.Kind.VOICE, Message.Kind.FILE):
        attachment_id = body.get("attachment")
        if type(attachment_id) is not int or not 0 < attachment_id <= BIGINT_MAX:
            raise Invalid("缺少附件")
        att = Attachment.objects.filter(
            pk=attachment_id, conversation_id=conversation_id, owner=sender, kind=kind
        ).first()
        if att is None:
            raise ImError(ImCode.ATTACHMENT_INVALID)
        out: dict[str, Any] = {
            "attachment": att.pk,
            "content_type": att.content_type,
            "size": att.size,
            "filename": att.filename,
        }
        if att.duration_ms is not None:
            out["duration_ms"] = att.duration_ms
        return out
    raise ImError(ImCode.KIND_FORBIDDEN)


_INSERT_PG = """
WITH c AS (
    UPDATE im_conversation SET last_seq = last_seq + 1, last_message_at = %(now)s
    WHERE id = %(cid)s AND closed_at IS NULL
      AND (%(system)s OR EXISTS (
          SELECT 1 FROM im_member WHERE conversation_id = %(cid)s AND user_id = %(uid)s AND left_at IS NULL))
    RETURNING last_seq
)
INSERT INTO im_message (conversation_id, seq, sender_id, kind, body, client_msg_id, created_at)
SELECT %(cid)s, c.last_seq, %(uid)s, %(kind)s, %(body)s, %(cmid)s, %(now)s FROM c
RETURNING id, seq, (
    SELECT array_agg(user_id) FROM im_member WHERE conversation_id = %(cid)s AND left_at IS NULL)
"""


def _insert(
    *, conversation_id: int, sender_id: int, kind: str, body: dict[str, Any], client_msg_id: str, system: bool
) -> Message | None:
    now = timezone.now()
    if connection.vendor == "postgresql":
        # Authorise, allocate the seq and insert in one statement: the row lock on
        # the conversation serialises senders, a failure rolls the seq back too.
        with connection.cursor() as cursor:
            cursor.execute(
                _INSERT_PG,
                {
                    "now": now,
                    "cid": conversation_id,
                    "uid": sender_id,
                    "kind": kind,
                    "body": _body_field().seal(body),  # encrypted at rest (ADR 0038)
                    "cmid": client_msg_id,
                    "system": system,
                },
            )
            row = cursor.fetchone()
        if row is None:
            return None
        message = Message(
            id=row[0], conversation_id=conversation_id, seq=row[1], sender_id=sender_id, kind=kind,
            body=body, client_msg_id=client_msg_id, created_at=now,
        )  # fmt: skip
        message.member_ids = list(row[2] or [])  # type: ignore[attr-defined]
        return message
    with transaction.atomic():
        allowed = (
            system
            or Member.objects.filter(conversation_id=conversation_id, user_id=sender_id, left_at__isnull=True).exists()
        )
        updated = Conversation.objects.filter(pk=conversation_id, closed_at__isnull=True).update(
            last_seq=F("last_seq") + 1, last_message_at=now
        )
        if not allowed or not updated:
            transaction.set_rollback(True)
            return None
        seq = Conversation.objects.values_list("last_seq", flat=True).get(pk=conversation_id)
        message = Message.objects.create(
            conversation_id=conversation_id, seq=seq, sender_id=sender_id, kind=kind, body=body,
            client_msg_id=client_msg_id, created_at=now,
        )  # fmt: skip
        message.member_ids = list(  # type: ignore[attr-defined]
            Member.objects.filter(conversation_id=conversation_id, left_at__isnull=True).values_list(
                "user_id", flat=True
            )
        )
        return message


def message_send(
    *,
    conversation_id: int,
    sender: User,
    kind: str,
    body: Any,
    client_msg_id: str,
    publish: bool = True,
    _system: bool = False,
    _savepoint: bool = True,
) -> SendResult:
    """Store a message and return its ack. Idempotent per (sender, client_msg_id).

    ``publish=False`` lets the socket path fan out from the event loop itself
    (faster); every other caller leaves it on."""
    if not isinstance(client_msg_id, str) or not (1 <= len(client_msg_id) <= 64):
        raise Invalid("缺少 client_msg_id")
    if not _system and type(kind) is not str:
        raise Invalid("消息类型格式错误")
    if not _system and kind not in CLIENT_KINDS:
        raise ImError(ImCode.KIND_FORBIDDEN)
    clean = body if _system else _validate_body(conversation_id=conversation_id, sender=sender, kind=kind, body=body)

    def insert() -> Message | None:
        return _insert(
            conversation_id=conversation_id, sender_id=sender.pk, kind=kind, body=clean,
            client_msg_id=client_msg_id, system=_system,
        )  # fmt: skip

    try:
        if _savepoint and connection.in_atomic_block:
            # Inside a caller's transaction a duplicate must not abort it: savepoint.
            with transaction.atomic():
                message = insert()
        else:
            message = insert()
    except IntegrityError:
        if not _savepoint and connection.in_atomic_block:
            raise  # the caller's transaction is aborted: let it redo the work
        # A retry of a send that was stored: answer with the first ack.
        existing = Message.objects.filter(sender=sender, client_msg_id=client_msg_id).first()
        if existing is None:
            raise
        if existing.conversation_id != conversation_id:
            raise ImError(ImCode.CLIENT_MSG_ID_REUSED) from None
        return SendResult(message_view(existing), duplicate=True)
    if message is None:
        if not Conversation.objects.filter(pk=conversation_id).exists():
            raise NotFound("会话")
        if Conversation.objects.filter(pk=conversation_id, closed_at__isnull=False).exists():
            raise ImError(ImCode.CONVERSATION_CLOSED)
        raise NotFound("会话")
    view = message_view(message)
    notify = tuple(u for u in getattr(message, "member_ids", ()) if u != sender.pk)
    if publish:
        publish_on_commit(topic_for(conversation_id), "im.message", view)
        for user_id in notify:
            publish_on_commit(f"user:{user_id}", "im.notify", view)
    schedule_offline_notice(conversation_id)
    return SendResult(view, duplicate=False, notify=notify)


@dataclass(frozen=True)
class SendRequest:
    conversation_id: int
    sender: User
    kind: str
    body: Any
    client_msg_id: Any


def message_send_batch(requests: list[SendRequest]) -> list[SendResult | ApiError]:
    """Group commit: several sends in one transaction, so one WAL flush serves
    them all, with one statement per message and no savepoints. A retried send
    (rare) violates the unique key and aborts the batch; the batch is then redone
    one send at a time, where each retry gets its first ack back."""
    try:
        with transaction.atomic():
            if connection.vendor == "postgresql" and all(r.kind == Message.Kind.TEXT for r in requests):
                return _send_text_batch_pg(requests)
            return [_send_or_error(r, savepoint=False) for r in requests]
    except IntegrityError:
        pass
    except Exception:
        # Not expected (the socket checks every field first), but one bad item
        # must never fail the others: redo them one at a time, each on its own.
        if len(requests) == 1:
            log.exception("im send failed")
            return [HubError(HubCode.INTERNAL_ERROR)]
        log.exception("im send batch of %d failed; redone one at a time", len(requests))
    return [_send_or_error(r, savepoint=True) for r in requests]


def _send_text_batch_pg(requests: list[SendRequest]) -> list[SendResult | ApiError]:
    """The whole batch in four statements, whatever its size: members of the
    conversations involved (authorisation and who to notify), their rows locked
    in id order (no deadlock between batches), the seqs advanced, one multi-row
    insert. Seqs stay gap-free: a failure rolls everything back."""
    results: list[SendResult | ApiError | None] = [None] * len(requests)
    clean: dict[int, dict[str, Any]] = {}
    first_of: dict[tuple[int, str], int] = {}
    for i, r in enumerate(requests):
        try:
            if not isinstance(r.client_msg_id, str) or not (1 <= len(r.client_msg_id) <= 64):
                raise Invalid("缺少 client_msg_id")
            clean[i] = _validate_body(conversation_id=r.conversation_id, sender=r.sender, kind=r.kind, body=r.body)
        except ApiError as exc:
            results[i] = exc
    conv_ids = sorted({requests[i].conversation_id for i in clean})
    if not conv_ids:
        return [r for r in results if r is not None]
    members: dict[int, list[int]] = {c: [] for c in conv_ids}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conversation_id, user_id FROM im_member WHERE conversation_id = ANY(%s) AND left_at IS NULL",
            [conv_ids],
        )
        for cid, uid in cursor.fetchall():
            members[cid].append(uid)
        accepted: dict[int, list[int]] = {}
        for i in clean:
            r = requests[i]
            key = (r.sender.pk, r.client_msg_id)
            if r.sender.pk not in members[r.conversation_id]:
                results[i] = NotFound("会话")
            elif key in first_of:
                results[i] = None  # a retry inside the batch: answered with the first's ack below
            else:
                first_of[key] = i
                accepted.setdefault(r.conversation_id, []).append(i)
        if accepted:
            ids = sorted(accepted)
            cursor.execute("SELECT id FROM im_conversation WHERE id = ANY(%s) ORDER BY id FOR UPDATE", [ids])
            now = timezone.now()
            cursor.execute(
                "UPDATE im_conversation AS c SET last_seq = c.last_seq + v.n, last_message_at = %s"
                " FROM unnest(%s::bigint[], %s::int[]) AS v(id, n)"
                " WHERE c.id = v.id AND c.closed_at IS NULL RETURNING c.id, c.last_seq",
                [now, ids, [len(accepted[c]) for c in ids]],
            )
            last = dict(cursor.fetchall())
            rows: list[Any] = []
            for cid in ids:
                if cid not in last:
                    for i in accepted[cid]:
                        results[i] = ImError(ImCode.CONVERSATION_CLOSED)
                    continue
                seq = last[cid] - len(accepted[cid])
                for i in accepted[cid]:
                    seq += 1
                    r = requests[i]
                    message = Message(
                        conversation_id=cid, seq=seq, sender_id=r.sender.pk, kind=r.kind, body=clean[i],
                        client_msg_id=r.client_msg_id, created_at=now,
                    )  # fmt: skip
                    notify = tuple(u for u in members[cid] if u != r.sender.pk)
                    results[i] = SendResult(message_view(message), duplicate=False, notify=notify)
                    rows.append((cid, seq, r.sender.pk, r.kind, _body_field().seal(clean[i]), r.client_msg_id, now))
            if rows:
                columns = [list(col) for col in zip(*rows, strict=True)]
                cursor.execute(
                    "INSERT INTO im_message (conversation_id, seq, sender_id, kind, body, client_msg_id, created_at)"
                    " SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::text[],"
                    " %s::text[], %s::text[], %s::timestamptz[])",
                    columns,
                )
                for cid in {row[0] for row in rows}:
                    schedule_offline_notice(cid)
    out: list[SendResult | ApiError] = []
    for i, r in enumerate(requests):
        result = results[i]
        if result is None:
            first = results[first_of[(r.sender.pk, r.client_msg_id)]]
            assert first is not None
            result = SendResult(first.message, duplicate=True) if isinstance(first, SendResult) else first
        out.append(result)
    return out


def _send_or_error(r: SendRequest, *, savepoint: bool) -> SendResult | ApiError:
    try:
        return message_send(
            conversation_id=r.conversation_id, sender=r.sender, kind=r.kind, body=r.body,
            client_msg_id=r.client_msg_id, publish=False, _savepoint=savepoint,
        )  # fmt: skip
    except ApiError as exc:
        return exc
    except Exception:
        if not savepoint:
            raise  # inside the shared transaction: the batch is redone one by one
        log.exception("im send failed")
        return HubError(HubCode.INTERNAL_ERROR)


def card_post(
    *, conversation: Conversation, sender: User, card_type: str, data: dict[str, Any], client_msg_id: str
) -> dict[str, Any]:
    """Post a structured card (prescription, scale assignment, video invite,
    order, follow-up task) into a conversation on behalf of ``sender``.

    ``data`` carries ids and a short summary; clients fetch details from the
    owning app's API."""
    if card_type not in CARD_TYPES:
        raise ValueError(f"unknown card type {card_type}")
    body = {"card_type": card_type, "data": data}
    return message_send(
        conversation_id=conversation.pk, sender=sender, kind=Message.Kind.CARD, body=body,
        client_msg_id=client_msg_id, _system=True,
    ).message  # fmt: skip


# --- recall and receipts -------------------------------------------------------


def message_recall(*, user: User, conversation_id: int, seq: int) -> dict[str, Any]:
    """Recall is itself a logged event (a ``recall`` message), never a delete.
    Only an active member recalls (one who left no longer writes here)."""
    with transaction.atomic():
        require_member(user=user, conversation_id=conversation_id)
        original = (
            Message.objects.select_for_update().filter(conversation_id=conversation_id, seq=seq, sender=user).first()
        )
        if original is None:
            raise NotFound("消息")
        if original.recalled_at is not None:
            raise ImError(ImCode.ALREADY_RECALLED)
        if timezone.now() - original.created_at > RECALL_WINDOW:
            raise ImError(ImCode.RECALL_EXPIRED)
        original.recalled_at = timezone.now()
        original.save(update_fields=["recalled_at"])
        result = message_send(
            conversation_id=conversation_id, sender=user, kind=Message.Kind.RECALL, body={"seq": seq},
            client_msg_id=f"recall-{original.pk}", _system=True,
        )  # fmt: skip
        audit_record(action="im.recall", actor=user, object_type="message", object_id=original.pk)
    return result.message


def receipt_update(
    *, user: User, conversation_id: int, delivered_seq: int | None = None, read_seq: int | None = None
) -> dict[str, int]:
    """Cumulative receipts: values only move forward, never past the last seq."""
    member = Member.objects.filter(conversation_id=conversation_id, user=user, left_at__isnull=True).first()
    if member is None:
        raise NotFound("会话")
    last = Conversation.objects.values_list("last_seq", flat=True).get(pk=conversation_id)
    fields: dict[str, Any] = {}
    if read_seq is not None:
        read = min(int(read_seq), last)
        fields["read_seq"] = Greatest(F("read_seq"), read)
        fields["delivered_seq"] = Greatest(F("delivered_seq"), read)
    if delivered_seq is not None and "delivered_seq" not in fields:
        fields["delivered_seq"] = Greatest(F("delivered_seq"), min(int(delivered_seq), last))
    if fields:
        Member.objects.filter(pk=member.pk).update(**fields)
    member.refresh_from_db(fields=["delivered_seq", "read_seq"])
    receipt = {
        "conversation": conversation_id,
        "user": user.pk,
        "delivered_seq": member.delivered_seq,
        "read_seq": member.read_seq,
    }
    if fields:
        publish_on_commit(topic_for(conversation_id), "im.receipt", receipt)
    return receipt


# --- offline notifications -------------------------------------------------------

_last_notice: dict[int, float] = {}
NOTICE_DEBOUNCE_SECONDS = 10.0


def schedule_offline_notice(conversation_id: int) -> None:
    """Queue the offline-notification check at most once per conversation per
    debounce window per process; the task itself decides who is offline."""
    now = time.monotonic()
    if now - _last_notice.get(conversation_id, 0.0) < NOTICE_DEBOUNCE_SECONDS:
        return
    _last_notice[conversation_id] = now
    if len(_last_notice) > 50_000:
        _last_notice.clear()
    from .tasks import notify_offline_members

    transaction.on_commit(lambda: notify_offline_members(conversation_id))


def attachment_check_access(*, user: User, attachment_id: int) -> Attachment:
    """Members read the conversation's attachments; a member who left keeps only
    those uploaded before they left (``left_at``), never anything newer."""
    att = Attachment.objects.filter(pk=attachment_id).first()
    allowed = (
        att is not None
        and Member.objects.filter(conversation_id=att.conversation_id, user=user)
        .filter(Q(left_at__isnull=True) | Q(left_at__gte=att.created_at))
        .exists()
    )
    if att is None or not allowed:
        audit_record(
            action="im.attachment_denied",
            actor=user,
            object_type="attachment",
            object_id=attachment_id,
            result="denied",
        )
        raise NotFound("附件")
    audit_record(action="im.attachment_read", actor=user, object_type="attachment", object_id=att.pk)
    return att


def require_member(*, user: User, conversation_id: int) -> Member:
    member = Member.objects.filter(conversation_id=conversation_id, user=user, left_at__isnull=True).first()
    if member is None:
        raise ImError(ImCode.NOT_MEMBER)
    return member
