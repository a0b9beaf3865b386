"""Third participants: an invitation code shown once, single use, that expires; joining
makes the user a member of the visit's conversation (so the room admits them);
removing them ends the membership, the room grant and the conversation topic at once;
wrong codes are throttled per user."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from apps.accounts.roles import Role
from apps.audit.models import AuditEvent
from apps.consultations import invitations
from apps.consultations.errors import ConsultError
from apps.consultations.models import Invitation, Visit
from apps.im.models import Member
from tests.conftest import make_patient, make_staff
from tests.consultations.clinical_factories import Clinic, make_clinic, make_doctor
from tests.support.socket_client import SocketClient


def _invite(c: Clinic, role: str = "family", **extra: Any) -> Any:
    return c.doctor.api().post(f"/consultations/visits/{c.visit.public_id}/invitations", {"role": role, **extra})


def _grant(who: Any, c: Clinic) -> Any:
    return who.api().post(f"/media/rooms/conv-{c.visit.conversation_id}/grant")


@pytest.mark.django_db
def test_family_member_joins_the_conversation_and_the_room() -> None:
    c = make_clinic()
    r = _invite(c)
    assert r.status_code == 201, r.json()
    body = r.json()
    assert len(body["code"]) == 8 and body["role_label"] == "家属"
    inv = Invitation.objects.get(pk=body["id"])
    assert body["code"] not in inv.code_hash and len(inv.code_hash) == 64  # only the keyed hash is stored
    assert inv.expires_at - timezone.now() > dt.timedelta(minutes=29)
    relative = make_patient("13900000075", "张三的女儿")
    assert _grant(relative, c).status_code == 403  # not a member yet
    r = relative.api().post("/consultations/invitations/redeem", {"code": body["code"].lower()})
    assert r.status_code == 200, r.json()
    assert r.json()["room_id"] == f"conv-{c.visit.conversation_id}"
    member = Member.objects.get(conversation_id=c.visit.conversation_id, user=relative.user)
    assert member.left_at is None and member.role != Member.Role.OBSERVER  # may publish video
    assert _grant(relative, c).status_code == 200
    people = c.doctor.api().get(f"/consultations/visits/{c.visit.public_id}/participants").json()
    assert [(p["user_id"], p["role_label"]) for p in people] == [(relative.user.pk, "家属")]
    # Single use.
    again = make_patient("13900000076", "另一位家属")
    r = again.api().post("/consultations/invitations/redeem", {"code": body["code"]})
    assert r.status_code == 409 and r.json()["code"] == "consult.invitation_used"
    assert not Member.objects.filter(user=again.user).exists()


@pytest.mark.django_db
def test_an_expired_invitation_is_refused_and_marked_expired() -> None:
    c = make_clinic()
    body = _invite(c, "interpreter").json()
    Invitation.objects.filter(pk=body["id"]).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    guest = make_patient("13900000077", "翻译")
    r = guest.api().post("/consultations/invitations/redeem", {"code": body["code"]})
    assert r.status_code == 410 and r.json()["code"] == "consult.invitation_expired", r.json()
    assert Invitation.objects.get(pk=body["id"]).status == Invitation.Status.EXPIRED
    assert not Member.objects.filter(user=guest.user).exists()
    assert _grant(guest, c).status_code == 403
    # Still expired when tried again (not "used", not joined).
    r = guest.api().post("/consultations/invitations/redeem", {"code": body["code"]})
    assert r.status_code == 410


@pytest.mark.django_db
def test_the_expiry_is_the_setting(settings: Any) -> None:
    settings.CONSULT_INVITE_MINUTES = 5
    c = make_clinic()
    inv = Invitation.objects.get(pk=_invite(c).json()["id"])
    assert dt.timedelta(minutes=4) < inv.expires_at - timezone.now() <= dt.timedelta(minutes=5)


@pytest.mark.django_db
def test_another_doctor_is_invited_by_id_and_only_they_redeem() -> None:
    c = make_clinic()
    consultant, _ = make_doctor("consultant", enrol=False)
    nurse = make_staff(Role.NURSE, "invnurse")
    r = _invite(c, "doctor", invitee_id=nurse.user.pk)
    assert r.status_code == 422  # must be a doctor
    body = _invite(c, "doctor", invitee_id=consultant.user.pk).json()
    stranger = make_patient("13900000078", "路人")
    r = stranger.api().post("/consultations/invitations/redeem", {"code": body["code"]})
    assert r.status_code == 404 and r.json()["code"] == "consult.invitation_invalid"
    r = consultant.api().post("/consultations/invitations/redeem", {"code": body["code"]})
    assert r.status_code == 200
    assert Member.objects.get(conversation_id=c.visit.conversation_id, user=consultant.user).role == Member.Role.STAFF


@pytest.mark.django_db
def test_who_may_invite_and_when() -> None:
    c = make_clinic()
    # The patient account may invite family.
    r = c.account.api().post(f"/consultations/visits/{c.visit.public_id}/invitations", {"role": "family"})
    assert r.status_code == 201
    stranger = make_patient("13900000079", "路人")
    r = stranger.api().post(f"/consultations/visits/{c.visit.public_id}/invitations", {"role": "family"})
    assert r.status_code == 404
    Visit.objects.filter(pk=c.visit.pk).update(status=Visit.Status.ENDED)
    r = _invite(c)
    assert r.status_code == 409 and r.json()["code"] == "consult.transition_refused"
    assert Invitation.objects.count() == 1


@pytest.mark.django_db
def test_wrong_codes_are_throttled_per_user(settings: Any) -> None:
    settings.CONSULT_INVITE_MAX_WRONG = 3
    c = make_clinic()
    code = _invite(c).json()["code"]
    guesser = make_patient("13900000080", "猜码者")
    api = guesser.api()
    for n in range(3):
        r = api.post("/consultations/invitations/redeem", {"code": f"WRONG00{n}"})
        assert r.status_code == 404 and r.json()["code"] == "consult.invitation_invalid"
    r = api.post("/consultations/invitations/redeem", {"code": code})  # even the right code now
    assert r.status_code == 429 and r.json()["code"] == "consult.invitation_throttled", r.json()
    assert not Member.objects.filter(user=guesser.user).exists()
    # Another user is not affected; the window passing lifts it.
    other = make_patient("13900000083", "家属").api()
    assert other.post("/consultations/invitations/redeem", {"code": code}).status_code == 200
    later = timezone.now() + dt.timedelta(minutes=16)
    with pytest.raises(ConsultError) as refused:
        invitations.redeem(user=guesser.user, code=code, now=later)
    assert refused.value.code == "consult.invitation_used"  # the throttle no longer answers
    assert AuditEvent.objects.filter(action="consult.invitation_wrong_code", actor_id=guesser.user.pk).count() == 3


@pytest.mark.django_db
def test_removed_participant_loses_the_room_grant_at_once() -> None:
    c = make_clinic()
    code = _invite(c).json()["code"]
    relative = make_patient("13900000084", "家属")
    assert relative.api().post("/consultations/invitations/redeem", {"code": code}).status_code == 200
    assert _grant(relative, c).status_code == 200
    # Only the doctor removes.
    r = c.account.api().delete(f"/consultations/visits/{c.visit.public_id}/participants/{relative.user.pk}")
    assert r.status_code == 404
    r = c.doctor.api().delete(f"/consultations/visits/{c.visit.public_id}/participants/{relative.user.pk}")
    assert r.status_code == 204
    assert not Member.objects.filter(user=relative.user, left_at__isnull=True).exists()
    r = _grant(relative, c)
    assert r.status_code == 403 and r.json()["code"] == "im.not_member"
    assert Invitation.objects.get(invitee=relative.user).status == Invitation.Status.REMOVED
    assert AuditEvent.objects.filter(action="im.member_remove", detail__user=relative.user.pk).exists()
    assert c.doctor.api().get(f"/consultations/visits/{c.visit.public_id}/participants").json() == []
    assert relative.api().get(f"/consultations/visits/{c.visit.public_id}/participants").status_code == 404
    # The used code does not bring them back.
    r = relative.api().post("/consultations/invitations/redeem", {"code": code})
    assert r.status_code == 409


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_removal_revokes_the_conversation_topic_on_the_open_socket() -> None:
    c = await sync_to_async(make_clinic)()
    relative = await sync_to_async(make_patient)("13900000085", "家属")
    made = await sync_to_async(invitations.invite)(user=c.doctor.user, visit_id=c.visit.public_id, role="family")
    await sync_to_async(invitations.redeem)(user=relative.user, code=made.code)
    sock = await SocketClient.for_user(relative.user)
    topic = f"conv:{c.visit.conversation_id}"
    assert (await sock.subscribe(topic))["ok"]
    await sync_to_async(invitations.remove)(
        user=c.doctor.user, visit_id=c.visit.public_id, participant_id=relative.user.pk
    )
    notice = await sock.wait_for(type="unsubscribed", timeout=3)
    assert notice["topic"] == topic and notice["reason"] == "participant_removed"
    again = await sock.subscribe(topic)
    assert again["type"] == "error" and again["code"] == "topic.forbidden"
    await sock.close()
