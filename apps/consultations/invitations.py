"""Third participants of a visit (family member, interpreter, another doctor).

The visit's doctor or its patient account invites while the visit is accepted or in
progress. The code is shown once and stored only as a keyed hash
(``hub.crypto.lookup_hash``); it expires after ``CONSULT_INVITE_MINUTES`` and is
single use. Another doctor is invited by user id (a doctor account) and only that
account may redeem the code. Redeeming (a signed-in user) makes them an active member
of the visit's IM conversation, which is what the room grant (``apps.media.access``)
admits; the doctor removing them ends the membership through ``im.member_remove``
(the conversation topic is revoked on their sockets; media ends their sessions on
the IM signal). Wrong codes are counted per user (audited as
``consult.invitation_wrong_code``): ``CONSULT_INVITE_MAX_WRONG`` in
``CONSULT_INVITE_WRONG_WINDOW_MINUTES`` answer 429 until the window passes."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import User
from apps.accounts.roles import Role
from apps.audit.models import AuditEvent
from apps.audit.services import audit_record
from apps.im import services as im
from apps.im.models import Conversation, Member
from hub import crypto
from hub.errors import ApiError, Invalid, NotFound
from hub.realtime.sessions import revoke_topic_on_commit

from .errors import ConsultCode, ConsultError
from .models import Invitation, Visit

ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read out over the phone
CODE_LENGTH = 8
# A family member may be invited (and join) while the patient waits; they enter the
# conversation and its room when the doctor calls the patient in (``members_join``).
INVITABLE = (Visit.Status.WAITING, Visit.Status.ACCEPTED, Visit.Status.IN_PROGRESS)
WRONG = "consult.invitation_wrong_code"


def code_hash(code: str) -> str:
    return crypto.lookup_hash(code.strip().upper().replace(" ", "").replace("-", ""), context="consult_invitation")


def _visit(user: User, visit_id: str, *, doctor_only: bool = False) -> Visit:
    visit = Visit.objects.select_related("doctor__user").filter(public_id=visit_id).first()
    is_doctor = visit is not None and visit.doctor is not None and visit.doctor.user_id == user.pk
    is_account = visit is not None and visit.account_id == user.pk
    if visit is None or not (is_doctor or (is_account and not doctor_only)):
        raise NotFound("问诊")
    return visit


def _member_add(conversation: Conversation, user: User, role: str) -> None:
    im.member_add(
        conversation=conversation,
        user=user,
        role=Member.Role.STAFF if role == Invitation.Role.DOCTOR else Member.Role.PATIENT,
    )


def members_join(visit: Visit, conversation: Conversation) -> int:
    """At the call-in (in its transaction): the participants who joined while the patient
    waited become members of the visit's conversation, and so of its room."""
    joined = list(Invitation.objects.filter(visit=visit, status=Invitation.Status.JOINED).select_related("invitee"))
    for inv in joined:
        if inv.invitee is not None:
            _member_add(conversation, inv.invitee, inv.role)
    return len(joined)


@dataclass(frozen=True)
class Created:
    invitation: Invitation
    code: str


def invite(*, user: User, visit_id: str, role: str, invitee_id: int | None = None) -> Created:
    visit = _visit(user, visit_id)
    if role not in Invitation.Role.values:
        raise Invalid("受邀人身份无效", field="role")
    if visit.status not in INVITABLE:
        raise ConsultError(ConsultCode.TRANSITION_REFUSED)
    invitee = None
    if role == Invitation.Role.DOCTOR:
        invitee = User.objects.filter(pk=invitee_id or 0, role=Role.DOCTOR, is_active=True).first()
        if invitee is None or (visit.doctor and invitee.pk == visit.doctor.user_id):
            raise Invalid("请选择另一位医生", field="invitee_id")
    code = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
    with transaction.atomic():
        inv = Invitation.objects.create(
            visit=visit,
            role=role,
            code_hash=code_hash(code),
            invited_by=user,
            invitee=invitee,
            expires_at=timezone.now() + dt.timedelta(minutes=settings.CONSULT_INVITE_MINUTES),
        )
        audit_record(
            action="consult.invitation_create",
            actor=user,
            object_type="visit",
            object_id=visit.public_id,
            detail={"invite_role": role, **({"user": invitee.pk} if invitee else {})},
        )
    return Created(inv, code)


def _wrong_count(user: User, now: dt.datetime) -> int:
    since = now - dt.timedelta(minutes=settings.CONSULT_INVITE_WRONG_WINDOW_MINUTES)
    return AuditEvent.objects.filter(action=WRONG, actor_id=user.pk, at__gte=since).count()


def redeem(*, user: User, code: str, now: dt.datetime | None = None) -> Visit:
    """Join the visit of ``code``. Refusals commit what they record (a wrong code is
    counted, an expired invitation is marked) and then raise."""
    now = now or timezone.now()
    refusal: ApiError | None = None
    visit: Visit | None = None
    with transaction.atomic():
        # One redeem per user at a time: the count below cannot be outrun by parallel guesses.
        User.objects.select_for_update().filter(pk=user.pk).first()
        if _wrong_count(user, now) >= settings.CONSULT_INVITE_MAX_WRONG:
            raise ConsultError(ConsultCode.INVITATION_THROTTLED, minutes=settings.CONSULT_INVITE_WRONG_WINDOW_MINUTES)
        inv = (
            Invitation.objects.select_for_update(of=("self",))
            .select_related("visit", "visit__doctor")
            .filter(code_hash=code_hash(code))
            .first()
        )
        pending = inv is not None and inv.status == Invitation.Status.PENDING
        # A doctor's invitation is theirs alone: anyone else's try is a wrong code.
        if inv is None or (pending and inv.invitee_id is not None and inv.invitee_id != user.pk):
            audit_record(action=WRONG, actor=user, object_type="invitation", result="denied")
            refusal = ConsultError(ConsultCode.INVITATION_INVALID)
        elif inv.status == Invitation.Status.EXPIRED or (
            inv.status == Invitation.Status.PENDING and inv.expires_at <= now
        ):
            if inv.status == Invitation.Status.PENDING:
                inv.status = Invitation.Status.EXPIRED
                inv.save(update_fields=["status"])
            audit_record(
                action="consult.invitation_expired",
                actor=user,
                object_type="invitation",
                object_id=inv.pk,
                result="denied",
            )
            refusal = ConsultError(ConsultCode.INVITATION_EXPIRED)
        elif inv.status != Invitation.Status.PENDING:
            refusal = ConsultError(ConsultCode.INVITATION_USED)
        else:
            visit = inv.visit
            if visit.status not in INVITABLE:
                refusal = ConsultError(ConsultCode.TRANSITION_REFUSED)
            elif user.pk == visit.account_id or (visit.doctor and user.pk == visit.doctor.user_id):
                refusal = Invalid("您已是本次问诊的成员", field="code")
            else:
                if visit.conversation_id is not None:
                    conversation = Conversation.objects.get(pk=visit.conversation_id)
                    _member_add(conversation, user, inv.role)
                inv.status = Invitation.Status.JOINED
                inv.invitee = user
                inv.joined_at = now
                inv.save(update_fields=["status", "invitee", "joined_at"])
                audit_record(
                    action="consult.invitation_redeem",
                    actor=user,
                    object_type="visit",
                    object_id=visit.public_id,
                    detail={"invite_role": inv.role},
                )
    if refusal is not None:
        raise refusal
    assert visit is not None
    return visit


def remove(*, user: User, visit_id: str, participant_id: int) -> None:
    """The doctor removes a joined participant: their conversation membership ends
    (and with it the room), at once."""
    visit = _visit(user, visit_id, doctor_only=True)
    with transaction.atomic():
        invs = list(
            Invitation.objects.select_for_update().filter(
                visit=visit, invitee_id=participant_id, status=Invitation.Status.JOINED
            )
        )
        if not invs:
            raise NotFound("参与人")
        now = timezone.now()
        for inv in invs:
            inv.status = Invitation.Status.REMOVED
            inv.removed_at = now
            inv.save(update_fields=["status", "removed_at"])
        participant = User.objects.get(pk=participant_id)
        if visit.conversation_id is not None:
            conversation = Conversation.objects.get(pk=visit.conversation_id)
            im.member_remove(conversation=conversation, user=participant, actor=user, reason="participant_removed")
        # The visit's own topic (queue, session ticks) too, at once.
        revoke_topic_on_commit(user_id=participant_id, topic=f"visit:{visit.public_id}", reason="participant_removed")
        audit_record(
            action="consult.participant_remove",
            actor=user,
            object_type="visit",
            object_id=visit.public_id,
            detail={"user": participant_id},
        )


def participants(*, user: User, visit_id: str) -> list[dict[str, Any]]:
    """Joined third participants; for the doctor, the account, and the participants."""
    visit = Visit.objects.select_related("doctor").filter(public_id=visit_id).first()
    allowed = visit is not None and (
        visit.account_id == user.pk
        or (visit.doctor is not None and visit.doctor.user_id == user.pk)
        or is_participant(user, visit)
    )
    if not allowed:
        raise NotFound("问诊")
    return [
        {
            "user_id": inv.invitee_id,
            "name": inv.invitee.display_name if inv.invitee else "",
            "role": inv.role,
            "role_label": inv.get_role_display(),
            "joined_at": inv.joined_at,
        }
        for inv in Invitation.objects.filter(visit=visit, status=Invitation.Status.JOINED)
        .select_related("invitee")
        .order_by("joined_at", "id")
    ]


def is_participant(user: User, visit: Visit) -> bool:
    """A third participant who joined and was not removed (for the ``visit:<id>`` topic's check)."""
    return Invitation.objects.filter(visit=visit, invitee=user, status=Invitation.Status.JOINED).exists()
