"""Care relationships: who may take a patient into care from a conversation,
the reasons and their expiry as the one selector sees them, ending, and that
refusals write nothing but their audit record."""

from __future__ import annotations

import datetime as dt
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from apps.accounts.demo import demo_patient
from apps.accounts.models import Patient, User
from apps.accounts.roles import Role
from apps.audit.models import AuditEvent
from apps.care_team import selectors as care_sel
from apps.care_team.errors import CareError
from apps.care_team.models import CareRelationship
from apps.im import services as im_services
from apps.im.models import Conversation, Member
from apps.psych import selectors as psych_selectors
from apps.psych.models import Assignment
from tests.conftest import make_patient, make_staff
from tests.psych.conftest import Care, add_patient, due, make_doctor

pytestmark = pytest.mark.django_db


@pytest.fixture
def closed_visit(care: Care) -> Care:
    """The visit conversation closes: the live relationship is gone."""
    Conversation.objects.filter(pk=care.conversation.pk).update(closed_at=timezone.now())
    return care


def take(persona: Any, conversation_id: int, **body: Any) -> Any:
    return persona.api().post("/care/relationships", {"conversation_id": conversation_id, **body})


def assign(persona: Any, patient: Patient) -> Any:
    return persona.api().post(
        "/psych/assignments", {"patient_id": patient.pk, "scale_codes": ["PHQ-9"], "due_date": due()}
    )


def test_a_doctor_of_the_conversation_takes_the_patient_into_care(care: Care) -> None:
    r = take(care.doctor, care.conversation.pk, patient_id=care.child.pk, note="复诊随访")
    assert r.status_code == 201, r.json()
    body = r.json()
    assert (body["reason"], body["reason_label"], body["active"]) == ("conversation", "会话接诊", True)
    assert (body["patient"]["name"], body["patient"]["relation_label"]) == ("张小明", "子女")
    assert (body["source_type"], body["source_id"]) == ("im_conversation", str(care.conversation.pk))
    until = dt.datetime.fromisoformat(body["until"])
    assert dt.timedelta(days=89) < until - timezone.now() <= dt.timedelta(days=90)
    rel = CareRelationship.objects.get()
    doctor_id = care.doctor.user.pk
    assert (rel.staff_id, rel.patient_id, rel.created_by_id) == (doctor_id, care.child.pk, doctor_id)
    audit = AuditEvent.objects.get(action="care.relationship_create", result="ok")
    assert (audit.actor_id, audit.object_id) == (care.doctor.user.pk, str(rel.pk))
    # Taking the same patient again returns the open relationship; nothing new is written.
    again = take(care.doctor, care.conversation.pk, patient_id=care.child.pk)
    assert again.status_code == 200 and again.json()["id"] == rel.pk
    assert CareRelationship.objects.count() == 1
    assert AuditEvent.objects.filter(action="care.relationship_create").count() == 1
    # Without patient_id the account's own (本人) 就诊人 is meant.
    own = take(care.doctor, care.conversation.pk)
    assert own.status_code == 201 and own.json()["patient"]["id"] == care.me.pk
    # Both reasons show: the live conversation and the recorded relationship.
    why = care.doctor.api().get(f"/care/patients/{care.child.pk}").json()
    assert sorted(x["reason_label"] for x in why["reasons"]) == ["会话成员", "会话接诊"]
    listed = care.doctor.api().get("/care/relationships").json()
    assert listed["count"] == 2 and {x["patient"]["name"] for x in listed["items"]} == {"张三", "张小明"}


def test_a_nurse_of_the_conversation_may_take_into_care_too(care: Care) -> None:
    nurse = make_staff(Role.NURSE, "carenurse")
    im_services.member_add(conversation=care.conversation, user=nurse.user, role=Member.Role.STAFF)
    assert take(nurse, care.conversation.pk, patient_id=care.me.pk).status_code == 201
    assert care_sel.in_care(nurse.user, care.me.pk)


def test_who_may_not_take_into_care_and_nothing_is_written(care: Care) -> None:
    stranger = make_doctor("carestranger")
    r = take(stranger, care.conversation.pk, patient_id=care.me.pk)
    assert r.status_code == 404 and r.json()["code"] == "care.conversation_not_found"
    assert r.json()["message"] == "会话不存在或您不是该会话的医护成员"
    # A conversation that does not exist answers the same.
    missing = take(stranger, 999999, patient_id=care.me.pk)
    assert (missing.status_code, missing.json()["code"]) == (404, "care.conversation_not_found")
    # The patient account itself and non-clinical staff cannot at all.
    assert take(care.account, care.conversation.pk).status_code == 403
    agent = make_staff(Role.CS_AGENT, "careagent")
    im_services.member_add(conversation=care.conversation, user=agent.user, role=Member.Role.STAFF)
    assert take(agent, care.conversation.pk).status_code == 403
    # An observer member is not the conversation's clinical staff.
    observer = make_doctor("careobserver")
    im_services.member_add(conversation=care.conversation, user=observer.user, role=Member.Role.OBSERVER)
    assert take(observer, care.conversation.pk).json()["code"] == "care.conversation_not_found"
    # A doctor who left the conversation no longer can.
    left = make_doctor("careleft")
    Member.objects.create(conversation=care.conversation, user=left.user, role="staff", left_at=timezone.now())
    assert take(left, care.conversation.pk).json()["code"] == "care.conversation_not_found"
    # A 就诊人 of another account is not in this conversation.
    other = make_patient("13900000077", "王五")
    theirs = add_patient(other, "王五")
    r = take(care.doctor, care.conversation.pk, patient_id=theirs.pk)
    assert (r.status_code, r.json()["code"]) == (404, "care.patient_not_in_conversation")
    # A group chat is not a care conversation.
    group = im_services.conversation_create(
        kind=Conversation.Kind.GROUP, members=[(care.doctor.user, "staff"), (care.account.user, "patient")]
    )
    assert take(care.doctor, group.pk).json()["code"] == "care.conversation_not_found"
    # Bad expiry: in the past or beyond a year.
    past = (timezone.now() - dt.timedelta(minutes=1)).isoformat()
    far = (timezone.now() + dt.timedelta(days=400)).isoformat()
    for until in (past, far):
        r = take(care.doctor, care.conversation.pk, patient_id=care.me.pk, until=until)
        assert (r.status_code, r.json()["code"]) == (422, "care.until_invalid")
    assert not CareRelationship.objects.exists()
    assert not AuditEvent.objects.filter(action="care.relationship_create", result="ok").exists()
    denied = AuditEvent.objects.filter(action="care.relationship_create", result="denied")
    assert denied.filter(actor_id=stranger.user.pk).count() == 2
    assert denied.filter(actor_id=care.doctor.user.pk, object_type="patient").exists()


def test_the_conversation_lists_whom_one_may_take_into_care(care: Care) -> None:
    d = care.doctor.api()
    rows = d.get(f"/care/conversations/{care.conversation.pk}/patients").json()["items"]
    assert [(r["name"], r["relation_label"], r["relationship"]) for r in rows] == [
        ("张三", "本人", None),
        ("张小明", "子女", None),
    ]
    rel_id = take(care.doctor, care.conversation.pk, patient_id=care.child.pk).json()["id"]
    rows = d.get(f"/care/conversations/{care.conversation.pk}/patients").json()["items"]
    assert [r["relationship"] and r["relationship"]["id"] for r in rows] == [None, rel_id]
    stranger = make_doctor("carepeek")
    r = stranger.api().get(f"/care/conversations/{care.conversation.pk}/patients")
    assert (r.status_code, r.json()["code"]) == (404, "care.conversation_not_found")
    assert AuditEvent.objects.filter(action="care.access_denied", actor_id=stranger.user.pk).exists()


def test_several_relatives_need_a_choice(care: Care) -> None:
    account = make_patient("13900000078", "赵六")
    add_patient(account, "赵大", relation="parent")
    add_patient(account, "赵二", relation="child")
    conv = im_services.conversation_for_pair(staff=care.doctor.user, patient=account.user)
    r = take(care.doctor, conv.pk)
    assert (r.status_code, r.json()["code"]) == (422, "care.patient_required")
    assert len(r.json()["detail"]["patient_ids"]) == 2
    assert not CareRelationship.objects.exists()


def test_a_closed_conversation_cannot_be_taken_from(closed_visit: Care) -> None:
    r = take(closed_visit.doctor, closed_visit.conversation.pk)
    assert (r.status_code, r.json()["code"]) == (409, "care.conversation_closed")
    assert not CareRelationship.objects.exists()


def test_the_relationship_outlasts_the_conversation_until_it_expires(care: Care) -> None:
    until = timezone.now() + dt.timedelta(hours=2)
    r = take(care.doctor, care.conversation.pk, patient_id=care.me.pk, until=until.isoformat())
    assert r.status_code == 201
    Conversation.objects.filter(pk=care.conversation.pk).update(closed_at=timezone.now())
    doctor = care.doctor.user
    # The live reason is gone with the conversation; the recorded one holds 本人 only.
    assert [p.pk for p in list(care_sel.patients_in_care(doctor))] == [care.me.pk]
    assert [p["name"] for p in care.doctor.api().get("/psych/patients").json()["items"]] == ["张三"]
    assert assign(care.doctor, care.child).status_code == 404
    # The selector respects ``until``: past it, nobody is in care.
    later = until + dt.timedelta(seconds=1)
    assert not care_sel.in_care(doctor, care.me.pk, at=later)
    assert care_sel.in_care(doctor, care.me.pk, at=until - dt.timedelta(seconds=1))
    now = timezone.now()
    CareRelationship.objects.update(starts_at=now - dt.timedelta(hours=3), until=now - dt.timedelta(seconds=1))
    assert care.doctor.api().get("/psych/patients").json()["items"] == []
    assert assign(care.doctor, care.me).status_code == 404
    assert not Assignment.objects.exists()
    # Taking into care again is refused too: the conversation is closed.
    assert take(care.doctor, care.conversation.pk).json()["code"] == "care.conversation_closed"
    # While it held, the recorded relationship was enough to assign.
    CareRelationship.objects.update(until=until)
    assert assign(care.doctor, care.me).status_code == 201


def test_an_ended_relationship_no_longer_grants_access(care: Care) -> None:
    rel_id = take(care.doctor, care.conversation.pk, patient_id=care.me.pk).json()["id"]
    Member.objects.filter(conversation=care.conversation, user=care.doctor.user).update(left_at=timezone.now())
    assert psych_selectors.doctor_may_assign(care.doctor.user, care.me.pk)
    # Another doctor cannot end it: same answer as a missing one, audited, nothing changes.
    other = make_doctor("careother")
    r = other.api().post(f"/care/relationships/{rel_id}/end", {"note": "x"})
    assert (r.status_code, r.json()["code"]) == (404, "care.relationship_not_found")
    assert CareRelationship.objects.get().ended_at is None
    assert AuditEvent.objects.filter(action="care.relationship_end", result="denied", actor_id=other.user.pk).exists()
    r = care.doctor.api().post(f"/care/relationships/{rel_id}/end", {"note": "转诊至上级医院"})
    assert r.status_code == 200 and r.json()["active"] is False and r.json()["ended_by"]["id"] == care.doctor.user.pk
    assert AuditEvent.objects.filter(action="care.relationship_end", result="ok", object_id=str(rel_id)).exists()
    assert not care_sel.in_care(care.doctor.user, care.me.pk)
    assert care.doctor.api().get("/psych/patients").json()["items"] == []
    assert assign(care.doctor, care.me).status_code == 404
    assert not Assignment.objects.exists()
    assert care.doctor.api().get(f"/care/patients/{care.me.pk}").json()["code"] == "care.relationship_not_found"
    assert care.doctor.api().get("/care/relationships").json()["count"] == 0
    assert care.doctor.api().get("/care/relationships", include_ended=True).json()["count"] == 1
    again = care.doctor.api().post(f"/care/relationships/{rel_id}/end")
    assert (again.status_code, again.json()["code"]) == (409, "care.already_ended")


def test_staff_in_care_of_a_patient_for_im_and_media(care: Care) -> None:
    other = make_doctor("careoncall")
    care.conversation.members.filter(user=care.doctor.user).update(left_at=timezone.now())
    assert list(care_sel.staff_in_care_of(care.me)) == []
    from apps.care_team.services import relationship_open

    relationship_open(staff=other.user, patient=care.me, reason=CareRelationship.Reason.DUTY, department="精神心理科")
    assert [u.pk for u in care_sel.staff_in_care_of(care.me)] == [other.user.pk]
    assert care_sel.care_reasons(other.user, care.me)[0]["reason_label"] == "科室值班"
    # A patient account never holds anyone in care.
    with pytest.raises(CareError) as refused:
        relationship_open(staff=care.account.user, patient=care.me, reason=CareRelationship.Reason.DUTY)
    assert refused.value.code == "care.not_clinical_staff"
    assert CareRelationship.objects.count() == 1


def test_seed_demo_gives_the_doctor_a_care_team(db: Any) -> None:
    call_command("seed_demo", stdout=StringIO())
    doctor = User.objects.get(username="doctor")
    family = Patient.objects.filter(owner=demo_patient("13800138001")).order_by("id")
    assert [p.pk for p in psych_selectors.doctor_patients(doctor)] == [p.pk for p in family]
    assert all(psych_selectors.doctor_may_assign(doctor, p.pk) for p in family)
    conv = Conversation.objects.get(kind="care_team", ref_type="demo_care_team")
    assert conv.members.filter(role="staff").count() == 2
    rels = CareRelationship.objects.filter(reason="care_plan")
    assert rels.count() == 2 * family.count()
    # Seeding again (also with --reset) adds nothing.
    call_command("seed_demo", stdout=StringIO())
    call_command("seed_demo", "--reset", stdout=StringIO())
    assert Conversation.objects.filter(ref_type="demo_care_team").count() == 1
    assert CareRelationship.objects.count() == rels.count()


# --- patient search (console 患者查询) ------------------------------------------------


def test_search_finds_only_patients_in_care_by_name_phone_and_id_tails(care: Care) -> None:
    api = care.doctor.api()
    everyone = api.get("/care/patients").json()
    assert sorted(x["name"] for x in everyone["items"]) == ["张三", "张小明"]
    child = next(x for x in everyone["items"] if x["name"] == "张小明")
    assert (child["relation_label"], child["account_name"]) == ("子女", "张三") and child["sex_label"] in ("男", "女")
    assert child["age"] >= 14 and "会话成员" in child["reasons"]
    assert "*" in child["id_number_masked"] and care.child.id_number not in str(everyone)
    assert [x["name"] for x in api.get("/care/patients", q="小明").json()["items"]] == ["张小明"]
    # The account's phone 13900000021 ends in 0021: both of its 就诊人 match.
    assert len(api.get("/care/patients", q="0021").json()["items"]) == 2
    tail = care.child.id_number[-4:]
    assert [x["name"] for x in api.get("/care/patients", q=tail).json()["items"]] == ["张小明"]
    # A patient outside the doctor's care is never found, by name or by tail.
    stranger_account = make_patient("13900000777", "李四")
    add_patient(stranger_account, "李四")
    assert api.get("/care/patients", q="李四").json()["items"] == []
    assert api.get("/care/patients", q="0777").json()["items"] == []
    # The query (digits of a phone) is not written to the audit log, only its kind.
    row = AuditEvent.objects.filter(action="care.patient_search").order_by("-id").first()
    assert row is not None and row.detail["query_kind"] == "tail" and "0777" not in str(row.detail)


def test_search_is_for_clinical_staff_only(care: Care) -> None:
    assert care.account.api().get("/care/patients").status_code == 403
    agent = make_staff(Role.CS_AGENT, "searchagent")
    assert agent.api().get("/care/patients").status_code == 403


def test_patient_page_profile_is_masked_and_audited(care: Care) -> None:
    r = care.doctor.api().get(f"/care/patients/{care.me.pk}")
    assert r.status_code == 200, r.json()
    profile = r.json()["profile"]
    assert profile["name"] == "张三" and profile["phone_masked"].startswith("139") and "****" in profile["phone_masked"]
    assert AuditEvent.objects.filter(action="care.patient_view", object_id=str(care.me.pk)).exists()
