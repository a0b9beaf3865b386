"""Assign -> fill (saved as it goes, resumable) -> submit -> report, through
the real HTTP stack, with the negative cases: strangers get 404 and nothing
happens; answers cannot change after submit."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from apps.accounts.models import SandboxOutbox
from apps.accounts.roles import Role
from apps.audit.models import AuditEvent
from apps.im import services as im_services
from apps.im.models import Message
from apps.psych.models import Alert, Assignment, Result
from hub import crypto
from tests.conftest import make_patient, make_staff

from .conftest import add_patient, due, make_doctor

pytestmark = pytest.mark.django_db

PHQ9_ANSWERS = {str(n): 1 for n in range(1, 9)} | {"9": 0}  # total 8, item 9 quiet


def assign(care, patient=None, scales=("PHQ-9",)):
    r = care.doctor.api().post(
        "/psych/assignments",
        {"patient_id": (patient or care.child).pk, "scale_codes": list(scales), "due_date": due()},
    )
    assert r.status_code == 201, r.json()
    return r.json()["items"]


def test_doctor_assigns_scales_card_and_notice_go_out(care, django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        items = assign(care, scales=("PHQ-9", "GAD-7"))
    assert [i["scale"]["code"] for i in items] == ["PHQ-9", "GAD-7"]
    assert {i["status"] for i in items} == {"assigned"} and items[0]["batch"] == items[1]["batch"]
    card = Message.objects.get(conversation=care.conversation, kind="card")
    assert card.body["card_type"] == "scale_assignment"
    assert card.body["data"]["assignment_ids"] == [i["id"] for i in items]
    assert "PHQ-9、GAD-7" in card.body["data"]["summary"] and "张小明" in card.body["data"]["summary"]
    sms = SandboxOutbox.objects.filter(recipient_hash=crypto.lookup_hash("13900000021", context="phone"))
    # One scale notice for the batch (IM may add its own unread-message notice).
    assert sms.filter(body__contains="心理量表待填写").count() == 1
    assert AuditEvent.objects.filter(action="psych.assign", actor_id=care.doctor.user.pk, result="ok").exists()
    # The patient account sees both (its family member's) assignments.
    listed = care.account.api().get("/psych/assignments").json()
    assert sorted(i["id"] for i in listed["items"]) == sorted(i["id"] for i in items)


def test_assigning_needs_a_care_relationship(care) -> None:
    stranger = make_doctor("strangerdoc")
    r = stranger.api().post(
        "/psych/assignments", {"patient_id": care.me.pk, "scale_codes": ["PHQ-9"], "due_date": due()}
    )
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    assert not Assignment.objects.exists()
    assert not Message.objects.filter(kind="card").exists()
    assert AuditEvent.objects.filter(action="psych.assign", actor_id=stranger.user.pk, result="denied").exists()
    # Other roles cannot assign at all.
    nurse = make_staff(Role.NURSE, "psynurse")
    r = nurse.api().post("/psych/assignments", {"patient_id": care.me.pk, "scale_codes": ["PHQ-9"], "due_date": due()})
    assert r.status_code == 403
    # Bad input: unknown scale, due date in the past, nothing created.
    d = care.doctor.api()
    r = d.post("/psych/assignments", {"patient_id": care.me.pk, "scale_codes": ["HAMD"], "due_date": due()})
    assert r.status_code == 422 and r.json()["code"] == "psych.scale_unknown"
    r = d.post("/psych/assignments", {"patient_id": care.me.pk, "scale_codes": ["PHQ-9"], "due_date": due(-1)})
    assert r.status_code == 422 and r.json()["code"] == "psych.due_invalid"
    assert not Assignment.objects.exists()


def test_answers_save_as_they_go_resume_and_freeze_on_submit(care) -> None:
    (item,) = assign(care)
    p = care.account.api()
    r = p.post(f"/psych/assignments/{item['id']}/answers", {"answers": {"1": 1, "2": 1}})
    assert r.status_code == 200 and r.json()["status"] == "in_progress" and r.json()["next_item"] == 3
    # An answer can change before submit; an invalid value is refused.
    assert p.post(f"/psych/assignments/{item['id']}/answers", {"answers": {"2": 2}}).json()["answers"]["2"] == 2
    bad = p.post(f"/psych/assignments/{item['id']}/answers", {"answers": {"3": 9}})
    assert bad.status_code == 422 and bad.json()["code"] == "psych.answer_invalid" and bad.json()["detail"]["item"] == 3
    # Resume: the saved answers and where to continue.
    resumed = p.get(f"/psych/assignments/{item['id']}").json()
    assert resumed["answers"] == {"1": 1, "2": 2} and resumed["next_item"] == 3
    assert len(resumed["definition"]["items"]) == 9
    # Submitting an incomplete sheet is refused and changes nothing.
    early = p.post(f"/psych/assignments/{item['id']}/submit", {})
    assert early.status_code == 422 and early.json()["detail"]["first_missing_item"] == 3
    assert not Result.objects.exists()
    report = p.post(f"/psych/assignments/{item['id']}/submit", {"answers": PHQ9_ANSWERS | {"2": 2}}).json()
    assert (report["raw_score"], report["band_label"]) == (9, "轻度抑郁")
    assert "筛查" in report["disclaimer"] and "不能作为诊断" in report["disclaimer"]
    assert report["norm_label"] == "PHQ-9 原作者分级标准" and report["needs_help"] is False
    # After submit: no answer changes, no second submit.
    again = p.post(f"/psych/assignments/{item['id']}/answers", {"answers": {"1": 3}})
    assert again.status_code == 409 and again.json()["code"] == "psych.already_submitted"
    twice = p.post(f"/psych/assignments/{item['id']}/submit", {"answers": {"1": 3}})
    assert twice.status_code == 409 and twice.json()["code"] == "psych.already_submitted"
    result = Result.objects.get()
    assert result.answers["1"] == 1 and result.raw_score == 9 and Result.objects.count() == 1


def test_the_database_refuses_to_rewrite_a_result(care) -> None:
    (item,) = assign(care)
    care.account.api().post(f"/psych/assignments/{item['id']}/submit", {"answers": PHQ9_ANSWERS})
    result = Result.objects.get()
    with pytest.raises(DatabaseError), transaction.atomic():
        Result.objects.filter(pk=result.pk).update(raw_score=0)
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM psych_result WHERE id = %s", [result.pk])
    assert Result.objects.get().raw_score == 8


def test_a_patient_cannot_reach_another_accounts_assignment(care) -> None:
    (item,) = assign(care)
    other = make_patient("13900000022", "另一患者")
    add_patient(other, "另一患者")
    o = other.api()
    assert o.get("/psych/assignments").json()["items"] == []
    for method, path, body in [
        ("get", f"/psych/assignments/{item['id']}", None),
        ("post", f"/psych/assignments/{item['id']}/answers", {"answers": {"1": 3}}),
        ("post", f"/psych/assignments/{item['id']}/submit", {"answers": PHQ9_ANSWERS}),
    ]:
        r = o.get(path) if method == "get" else o.post(path, body)
        assert r.status_code == 404, path
    assert Assignment.objects.get().draft_answers == {} and not Result.objects.exists()
    assert AuditEvent.objects.filter(action="psych.access_denied", actor_id=other.user.pk).count() == 3
    # Once submitted, the report is equally out of reach.
    care.account.api().post(f"/psych/assignments/{item['id']}/submit", {"answers": PHQ9_ANSWERS})
    rid = Result.objects.get().pk
    assert o.get(f"/psych/results/{rid}").status_code == 404
    assert o.get(f"/psych/results/{rid}/print").status_code == 404
    # A patient never reaches the clinical endpoints.
    assert o.get("/psych/alerts").status_code == 403 and o.get("/psych/patients").status_code == 403


def test_a_doctor_sees_only_their_patients(care) -> None:
    (item,) = assign(care)
    care.account.api().post(f"/psych/assignments/{item['id']}/submit", {"answers": PHQ9_ANSWERS})
    rid = Result.objects.get().pk
    other_doc = make_doctor("otherdoc")
    # The other doctor has a patient of their own, which stays invisible to the first.
    theirs = make_patient("13900000023", "王五")
    theirs_patient = add_patient(theirs, "王五")
    im_services.conversation_for_pair(staff=other_doc.user, patient=theirs.user)
    od = other_doc.api()
    assert [p["name"] for p in od.get("/psych/patients").json()["items"]] == ["王五"]
    assert od.get("/psych/assignments").json()["items"] == []
    assert od.get("/psych/assignments", patient_id=care.child.pk).json()["items"] == []
    assert od.get(f"/psych/assignments/{item['id']}").status_code == 404
    assert od.get(f"/psych/results/{rid}").status_code == 404
    assert od.post(f"/psych/results/{rid}/sign", {"note": "x"}).status_code == 404
    assert od.post(f"/psych/assignments/{item['id']}/cancel").status_code == 404
    d = care.doctor.api()
    assert sorted(p["name"] for p in d.get("/psych/patients").json()["items"]) == ["张三", "张小明"]
    assert d.get(f"/psych/assignments/{item['id']}").status_code == 200
    assert d.get("/psych/assignments", patient_id=theirs_patient.pk).json()["items"] == []
    # A patient's API token cannot fetch the clinical report shape either.
    assert care.account.api().get(f"/psych/results/{rid}").json()["kind"] == "patient"
    assert "items" not in care.account.api().get(f"/psych/results/{rid}").json()


def test_clinical_report_items_trend_sign_and_print(care) -> None:
    d, p = care.doctor.api(), care.account.api()
    first, second = assign(care)[0], assign(care)[0]
    p.post(f"/psych/assignments/{first['id']}/submit", {"answers": {str(n): 2 for n in range(1, 9)} | {"9": 0}})
    p.post(f"/psych/assignments/{second['id']}/submit", {"answers": PHQ9_ANSWERS})
    rid = Result.objects.get(assignment_id=second["id"]).pk
    report = d.get(f"/psych/results/{rid}").json()
    assert report["kind"] == "clinical" and report["band_label"] == "轻度抑郁"
    assert [(i["no"], i["answer"], i["value"]) for i in report["items"][:2]] == [(1, "好几天", 1), (2, "好几天", 1)]
    assert [t["raw_score"] for t in report["trend"]] == [16, 8]
    assert [t["band_label"] for t in report["trend"]] == ["中重度抑郁", "轻度抑郁"]
    assert AuditEvent.objects.filter(action="psych.report_view", object_id=str(rid)).exists()
    signed = d.post(f"/psych/results/{rid}/sign", {"note": "较前好转，继续随访。"})
    assert signed.status_code == 201 and signed.json()["signature_valid"] is True
    again = d.post(f"/psych/results/{rid}/sign", {"note": "改一下"})
    assert again.status_code == 409 and again.json()["code"] == "psych.already_signed"
    seen = p.get(f"/psych/results/{rid}").json()
    assert seen["review"]["note"] == "较前好转，继续随访。"
    html = d.get(f"/psych/results/{rid}/print")
    assert html.status_code == 200 and html["Content-Type"].startswith("text/html")
    text = html.content.decode()
    for expected in ("轻度抑郁", "PHQ-9 原作者分级标准", "不能作为诊断依据", "逐题作答", "较前好转", "历次测评"):
        assert expected in text, expected
    patient_html = p.get(f"/psych/results/{rid}/print").content.decode()
    assert "逐题作答" not in patient_html and "轻度抑郁" in patient_html


def test_cancel_before_submit_only(care) -> None:
    first, second = assign(care)[0], assign(care)[0]
    d, p = care.doctor.api(), care.account.api()
    assert d.post(f"/psych/assignments/{first['id']}/cancel").json()["status"] == "cancelled"
    refused = p.post(f"/psych/assignments/{first['id']}/answers", {"answers": {"1": 1}})
    assert refused.status_code == 409 and refused.json()["code"] == "psych.assignment_closed"
    p.post(f"/psych/assignments/{second['id']}/submit", {"answers": PHQ9_ANSWERS})
    late = d.post(f"/psych/assignments/{second['id']}/cancel")
    assert late.status_code == 409 and late.json()["code"] == "psych.transition_refused"


def test_norm_and_rounding_settings_apply_and_are_reported(care, settings) -> None:
    settings.PSYCH_ZUNG_NORM = "zung"
    settings.PSYCH_STANDARD_ROUNDING = "round"
    (item,) = assign(care, scales=("SDS",))
    # Raw 42 (52.5): Zung norm with rounding -> 53, mild; China + truncate would say normal.
    sheet = {str(n): 2 for n in range(1, 21)} | {"19": 1, "1": 3, "3": 3, "4": 3}
    report = care.account.api().post(f"/psych/assignments/{item['id']}/submit", {"answers": sheet}).json()
    assert (report["raw_score"], report["standard_score"]) == (42, 53)
    assert report["norm_label"].startswith("Zung") and report["band_label"] == "轻度抑郁"
    clinical = care.doctor.api().get(f"/psych/results/{report['result_id']}").json()
    assert clinical["rounding"] == "round" and clinical["rounding_label"] == "四舍五入"
    assert not Alert.objects.exists()  # item 19 answered 1: below the alert rule


def test_results_carry_the_band_code_one_critical_shape_and_utc_times(care) -> None:
    """Issue 9: ``band`` beside ``band_label``; ``critical`` is always a list of
    critical items ([] when none); times come back in UTC on create and read."""
    d = care.doctor.api()
    due_at = (timezone.now() + dt.timedelta(days=3)).astimezone(dt.timezone(dt.timedelta(hours=8)))
    created = d.post(
        "/psych/assignments", {"patient_id": care.child.pk, "scale_codes": ["PHQ-9"], "due_at": due_at.isoformat()}
    )
    assert created.status_code == 201, created.json()
    (item,) = created.json()["items"]
    assert item["due_at"].endswith("Z") and item["critical"] == [] and item["band"] == ""
    read = care.account.api().get(f"/psych/assignments/{item['id']}").json()
    assert read["due_at"] == item["due_at"]
    assert dt.datetime.fromisoformat(item["due_at"]) == due_at.replace(microsecond=due_at.microsecond // 1000 * 1000)
    p = care.account.api()
    report = p.post(f"/psych/assignments/{item['id']}/submit", {"answers": PHQ9_ANSWERS | {"9": 1}}).json()
    assert (report["band"], report["band_label"], report["kind"]) == ("mild", "轻度抑郁", "patient")
    assert [c["code"] for c in report["critical"]] == ["suicide_risk"] and report["needs_help"] is True
    assert "items" not in report  # the clinical part stays out of the patient version
    listed = p.get("/psych/assignments").json()["items"][0]
    assert listed["band"] == "mild" and listed["critical"] == report["critical"]
    # The instruction to the clinician is in what the doctor reads, never in the patient's.
    assert all(c["action"] == "" for c in report["critical"] + listed["critical"])
    clinical = d.get(f"/psych/results/{report['result_id']}").json()
    codes = [c["code"] for c in report["critical"]]
    assert clinical["kind"] == "clinical" and [c["code"] for c in clinical["critical"]] == codes
    assert all(c["action"] for c in clinical["critical"])
    assert clinical["trend"][0]["band"] == "mild" and clinical["trend"][0]["critical"] == clinical["critical"]
    doctor_list = d.get("/psych/assignments", patient_id=care.child.pk).json()["items"][0]
    assert doctor_list["critical"] == clinical["critical"]
    assert [b["code"] for b in clinical["bands"]][:2] == ["none", "mild"]
    assert clinical["submitted_at"].endswith("Z") and clinical["alerts"][0]["created_at"].endswith("Z")
