"""Consultations on the one timed-session capability (``apps.timed``, ADR 0045).

- ``start_visit_session(visit)``: called in the call-in transaction; the duration is the
  visit kind's (``CONSULT_SESSION_SECONDS``), one extension of ``CONSULT_EXTENSION_MINUTES``
  allowed; events go to the visit's topic and its conversation's; a video visit's media
  room is ``conv-<conversation id>`` (closed at the end, its recording sealed).
- The owner hooks (registered in ``apps.py``): at the end, whoever ends it (the doctor,
  the deadline enforced by the server), ``services.visit_session_ended`` ends the visit in
  the same transaction; an extension is billed by ``bill_extension``: an order for
  ``consultation_extension`` (one per visit, ``CONSULT_EXTENSION_PRICE_FEN``) created for
  the patient's account in the extension's transaction, so an extension that cannot be
  billed does not happen. The order waits in 我的订单 for the patient to pay (the
  doctor's extension does not wait for the payment).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils import timezone

from apps.commerce.registry import Quote, register_item_kind
from apps.commerce.services import CheckoutLine, order_checkout
from apps.timed.services import session_start
from hub.errors import NotFound

from .models import Visit, VisitKind

OWNER = "consultation"
EXTENSION_KIND = "consultation_extension"


def session_topics(visit: Visit) -> list[str]:
    topics = [f"visit:{visit.public_id}"]
    if visit.conversation_id:
        topics.append(f"conv:{visit.conversation_id}")
    return topics


def start_visit_session(visit: Visit, *, actor: Any) -> int:
    """Open the visit's timed session (inside the caller's call-in transaction)."""
    seconds = int(settings.CONSULT_SESSION_SECONDS[visit.kind])
    room = f"conv-{visit.conversation_id}" if visit.kind == VisitKind.VIDEO and visit.conversation_id else ""
    session = session_start(
        owner_kind=OWNER,
        owner_id=visit.public_id,
        duration_seconds=seconds,
        extension_seconds=int(settings.CONSULT_EXTENSION_MINUTES * 60),
        room_id=room,
        conversation_id=visit.conversation_id,
        topics=session_topics(visit),
        actor=actor,
    )
    Visit.objects.filter(pk=visit.pk).update(timed_session_id=session.pk, updated_at=timezone.now())
    visit.timed_session_id = session.pk
    return int(session.pk)


def bill_extension(session: Any, actor: Any) -> None:
    """The owner's ``on_extend``: the patient's order for the extension (idempotent per visit)."""
    visit = Visit.objects.select_related("account").filter(public_id=session.owner_id).first()
    if visit is None:
        raise NotFound("问诊")
    order_checkout(
        payer=visit.account,
        patient_id=visit.patient_id,
        lines=[CheckoutLine(kind=EXTENSION_KIND, ref=visit.public_id)],
        client_key=f"consult-ext-{visit.public_id}",
    )


def _extension_quote(patient: Any, ref: str, quantity: int) -> Quote:
    visit = Visit.objects.filter(public_id=ref, patient=patient).first()
    if visit is None or quantity != 1:
        raise NotFound("问诊")
    return Quote(
        title=f"{VisitKind(visit.kind).label}延长{settings.CONSULT_EXTENSION_MINUTES}分钟",
        unit_price_fen=int(settings.CONSULT_EXTENSION_PRICE_FEN),
    )


def _extension_can_checkout(patient: Any, ref: str, quantity: int) -> str | None:
    visit = Visit.objects.filter(public_id=ref, patient=patient).only("timed_session_id").first()
    if visit is None or quantity != 1 or not visit.timed_session_id:
        return "问诊不存在或未开始"
    return None


def register_extension_item() -> None:
    register_item_kind(
        EXTENSION_KIND,
        title="问诊延时",
        quote=_extension_quote,
        can_checkout=_extension_can_checkout,
        on_paid=lambda item: True,  # nothing to deliver: the time was given when the doctor extended
    )
