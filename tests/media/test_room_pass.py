"""The web-view's way into a video room (apps.media.passes): a one-time pass from the
logged-in mini-program, redeemed once for a room session that fetches grants for that
room only, for as long as the login session and the membership last."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from apps.accounts.roles import Role
from apps.accounts.services import token_issue
from apps.im.services import conversation_for_pair, member_remove
from apps.media.grants import verify
from tests.conftest import Api, make_patient, make_staff

pytestmark = pytest.mark.django_db


def redeem(code: str) -> Any:
    return Client().post("/media/passes/redeem", json.dumps({"pass": code}), content_type="application/json")


def pass_grant(room: str, session: str) -> Any:
    return Client().post(f"/media/rooms/{room}/grant", HTTP_AUTHORIZATION=f"Pass {session}")


def test_a_pass_is_spent_once_and_its_session_fetches_grants_of_its_room_only() -> None:
    doctor = make_staff(Role.DOCTOR, "passdoc")
    patient, other = make_patient("13911119991"), make_patient("13911119992")
    conversation = conversation_for_pair(staff=doctor.user, patient=patient.user)
    room = f"conv-{conversation.pk}"
    other_room = f"conv-{conversation_for_pair(staff=doctor.user, patient=other.user).pk}"
    login = token_issue(user=patient.user)
    app = Api(login.raw)

    issued = app.post(f"/media/rooms/{room}/pass")
    assert issued.status_code == 200, issued.content
    body = issued.json()
    assert body["expires_in"] == 60 and body["page"] == f"/h5/#/pages/video/room?room={room}&pass={body['pass_code']}"
    # Not a member of the other room: no pass for it.
    assert app.post(f"/media/rooms/{other_room}/pass").json()["code"] == "im.not_member"

    first = redeem(body["pass_code"])
    assert first.status_code == 200, first.content
    session = first.json()["session"]
    # Spent: a second redemption (the URL replayed from a log) gets nothing.
    again = redeem(body["pass_code"])
    assert again.status_code == 403 and again.json()["code"] == "media.pass_invalid"
    assert redeem("x" * 32).json()["code"] == "media.pass_invalid"

    grant = pass_grant(room, session)
    assert grant.status_code == 200, grant.content
    claims = verify(grant.json()["token"], purpose="room")
    assert claims["room"] == room and claims["peer"] == f"u{patient.user.pk}" and claims["sid"] == login.token.pk
    assert grant.json()["whip_url"] == f"/media/whip/{room}"
    # The session opens its room only, and is no login: the API refuses it.
    assert pass_grant(other_room, session).json()["code"] == "media.pass_invalid"
    assert Client().post(f"/api/v1/media/rooms/{room}/grant", HTTP_AUTHORIZATION=f"Bearer {session}").status_code == 401
    assert Client().post(f"/media/rooms/{room}/grant").json()["code"] == "media.pass_invalid"

    # Removed from the conversation: no more grants.
    member_remove(conversation=conversation, user=patient.user)
    refused = pass_grant(room, session)
    assert refused.status_code == 403 and refused.json()["code"] == "im.not_member"


def test_a_room_session_ends_with_its_login() -> None:
    doctor = make_staff(Role.DOCTOR, "passdoc2")
    patient = make_patient("13911119993")
    room = f"conv-{conversation_for_pair(staff=doctor.user, patient=patient.user).pk}"
    login = token_issue(user=patient.user)
    app = Api(login.raw)
    session = redeem(app.post(f"/media/rooms/{room}/pass").json()["pass_code"]).json()["session"]
    assert pass_grant(room, session).status_code == 200
    assert app.post("/auth/logout").status_code == 204
    refused = pass_grant(room, session)
    assert refused.status_code == 403 and refused.json()["code"] == "media.pass_invalid"
