"""Object authorisation: the same 404 for not-yours, masking and no internal notes for patients."""

from __future__ import annotations

import pytest

from apps.accounts.roles import Role
from apps.audit.models import AuditEvent
from tests.conftest import make_patient, make_staff

from .conftest import Rx, draft, make_doctor
from .test_flow import create, put, sign_and_submit


@pytest.mark.django_db
def test_not_yours_answers_like_missing(rx: Rx) -> None:
    pid = create(rx)
    stranger = make_doctor("strange")
    other_patient = make_patient("13900000061", "王五")
    for api in (stranger.api(), other_patient.api(), rx.pharmacist.api(), rx.account.api()):
        # a draft: only its doctor sees it (not the pharmacist, not yet the patient)
        mine, missing = api.get(f"/pharmacy/prescriptions/{pid}"), api.get("/pharmacy/prescriptions/99999999")
        assert mine.status_code == missing.status_code == 404 and mine.json() == missing.json()
    r = stranger.api().post(f"/pharmacy/prescriptions/{pid}/sign", {"pin": "246810"})
    assert r.status_code == 404
    r = put(stranger.api(), f"/pharmacy/prescriptions/{pid}", draft(rx.me))
    assert r.status_code == 404
    assert AuditEvent.objects.filter(action="pharmacy.access_denied", object_id=str(pid)).count() >= 6
    nurse = make_staff(Role.NURSE, "rxnurse")
    assert nurse.api().get(f"/pharmacy/prescriptions/{pid}").status_code == 403


@pytest.mark.django_db
def test_the_patient_sees_their_prescriptions_masked_without_internal_notes(rx: Rx) -> None:
    pid = create(rx, note_to_pharmacist="内部备注")
    hidden = rx.account.api().get("/pharmacy/prescriptions").json()
    assert hidden["count"] == 0  # drafts are the doctor's
    sign_and_submit(rx, pid)
    listed = rx.account.api().get("/pharmacy/prescriptions").json()
    assert listed["count"] == 1
    row = listed["items"][0]
    assert row["note_to_pharmacist"] == "" and row["review_note"] == "" and row["reject_reason"] == ""
    assert "*" in row["patient"]["id_number_masked"]
    assert row["allowed_actions"] == []
    assert row["diagnosis"] == "原发性高血压，复诊" and row["signature_valid"] is True
    # another account's patient sees nothing
    assert make_patient("13900000062", "赵六").api().get("/pharmacy/prescriptions").json()["count"] == 0


@pytest.mark.django_db
def test_the_queue_is_oldest_first_and_paginated(rx: Rx) -> None:
    ids = [create(rx) for _ in range(3)]
    for pid in ids:
        sign_and_submit(rx, pid)
    page1 = rx.pharmacist.api().get("/pharmacy/review-queue", limit=2).json()
    page2 = rx.pharmacist.api().get("/pharmacy/review-queue", limit=2, offset=2).json()
    assert page1["count"] == 3 and [r["id"] for r in page1["items"] + page2["items"]] == ids
    assert AuditEvent.objects.filter(action="pharmacy.review_queue_view").count() == 2
    assert rx.doctor.api().get("/pharmacy/review-queue").status_code == 403


@pytest.mark.django_db
def test_catalogue_search(rx: Rx) -> None:
    api = rx.doctor.api()
    found = api.get("/pharmacy/drugs", q="阿莫西林").json()
    assert [d["code"] for d in found["items"]] == ["AMOX-025"]
    assert found["items"][0]["price_yuan"] == "15.80"
    # controlled drugs are not offered to prescribers; the pharmacist can list them
    assert api.get("/pharmacy/drugs", q="地西泮").json()["count"] == 0
    listed = rx.pharmacist.api().get("/pharmacy/drugs", q="地西泮", all=True).json()
    assert listed["items"][0]["controlled_label"] == "第二类精神药品"
    cats = {d["category"] for d in rx.pharmacist.api().get("/pharmacy/drugs", limit=100, all=True).json()["items"]}
    assert cats == {"western", "patent", "decoction", "fsmp", "tea"}
    vocab = api.get("/pharmacy/vocabularies").json()
    assert {"code": "tid", "label": "每日三次", "doses_per_period": 3, "period_days": 1} in vocab["frequencies"]
    assert api.get("/pharmacy/drugs", category="nope").status_code == 422
