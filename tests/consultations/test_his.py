"""The HIS adapter: a signed exchange with the (sandbox) hospital gateway, an idempotent
import by ``his_ref``, failures that write nothing, and no sandbox in production."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.test import override_settings

from apps.audit.models import AuditEvent
from apps.consultations import his
from apps.consultations.models import PriorRecord
from hub import outside
from hub.outside import SandboxInProduction, configured_sandboxes
from tests.conftest import Persona, add_patient, make_patient

pytestmark = pytest.mark.django_db

RECORDS = [
    his.HisDiagnosis("MZ-2026-0001", "本院", dt.date(2026, 9, 1), "I10", "原发性高血压", "门诊随访"),
    his.HisDiagnosis("ZY-2026-0042", "本院", dt.date(2026, 5, 3), "E11.9", "2型糖尿病", "出院小结"),
]


@pytest.fixture(autouse=True)
def _clean_sandbox() -> Iterator[None]:
    his.sandbox_clear()
    yield
    his.sandbox_clear()


@pytest.fixture
def owner() -> Persona:
    return make_patient("13900000081", "王五")


def test_sync_imports_the_hospital_records_once(owner: Persona) -> None:
    patient = add_patient(owner, "王五")
    his.sandbox_enrol(patient, RECORDS)
    api = owner.api()
    r = api.post(f"/consultations/patients/{patient.pk}/prior-records/his-sync")
    assert r.status_code == 200, r.json()
    rows = r.json()
    assert {(x["icd10_code"], x["diagnosis"], x["source"]) for x in rows} == {
        ("I10", "原发性高血压", "his"),
        ("E11.9", "2型糖尿病", "his"),
    }
    assert all(x["review_label"] == "本院记录，无需审核" for x in rows)
    # Again: nothing new (idempotent by his_ref); a record added at the hospital comes in alone.
    assert len(api.post(f"/consultations/patients/{patient.pk}/prior-records/his-sync").json()) == 2
    his.sandbox_enrol(patient, [*RECORDS, his.HisDiagnosis("MZ-2026-0099", "本院", None, "J45.9", "哮喘", "")])
    assert len(api.post(f"/consultations/patients/{patient.pk}/prior-records/his-sync").json()) == 3
    assert PriorRecord.objects.filter(patient=patient, source="his").count() == 3
    # Clinical text is encrypted at rest.
    with connection.cursor() as cur:
        cur.execute("SELECT diagnosis FROM consultations_priorrecord WHERE patient_id = %s", [patient.pk])
        assert all("高血压" not in row[0] and "糖尿病" not in row[0] for row in cur.fetchall())


def test_the_sandbox_answers_the_demo_patients_by_id_number_hash(owner: Persona) -> None:
    demo = make_patient("13800138002", "李娜")  # a demo account's phone (seed_demo)
    father = add_patient(demo, "李建国", relation="parent", birth=dt.date(1952, 4, 2))
    found = his.SandboxHisClient().diagnoses(father)
    assert [d.icd10_code for d in found] == ["I25.1", "I10"]
    # A 就诊人 the hospital does not know: nothing on file.
    assert his.SandboxHisClient().diagnoses(add_patient(owner, "王五")) == []


@pytest.mark.parametrize("failure", ["timeout", "error", "bad_signature"])
def test_a_failing_gateway_answers_503_and_writes_nothing(owner: Persona, settings: Any, failure: str) -> None:
    patient = add_patient(owner, "王五")
    his.sandbox_enrol(patient, RECORDS)
    settings.CONSULT_HIS_SANDBOX_FAILURE = failure
    r = owner.api().post(f"/consultations/patients/{patient.pk}/prior-records/his-sync")
    assert r.status_code == 503 and r.json()["code"] == "consult.his_unavailable", r.json()
    assert not PriorRecord.objects.exists()
    assert not AuditEvent.objects.filter(action="consult.his_sync").exists()


def test_the_gateway_refuses_a_request_with_a_wrong_signature(owner: Persona) -> None:
    patient = add_patient(owner, "王五")
    key = his.shared_key()
    request = his.build_request(patient.id_number_hash, key=key, app_id="ihospital")
    assert his.sandbox_gateway(request, key=key).status == 200
    tampered = his.HisRequest(
        request.method, request.path, request.headers, json.dumps({"patient": {"identifier_hash": "x"}}).encode()
    )
    answer = his.sandbox_gateway(tampered, key=key)
    assert answer.status == 401
    # A stale timestamp is refused too (replay).
    old = his.build_request(patient.id_number_hash, key=key, app_id="ihospital", now=1_000_000)
    assert his.sandbox_gateway(old, key=key).status == 401
    # And the client verifies the answer's signature under its own key.
    assert his.verify_response(request, his.sandbox_gateway(request, key=key), key=key)
    assert not his.verify_response(request, his.sandbox_gateway(request, key=b"another key"), key=key)


def test_another_account_cannot_sync_and_nothing_is_written(owner: Persona) -> None:
    patient = add_patient(owner, "王五")
    his.sandbox_enrol(patient, RECORDS)
    stranger = make_patient("13900000082", "路人")
    r = stranger.api().post(f"/consultations/patients/{patient.pk}/prior-records/his-sync")
    assert r.status_code == 404
    assert not PriorRecord.objects.exists()


def test_production_refuses_the_sandbox_gateway(owner: Persona, monkeypatch: pytest.MonkeyPatch) -> None:
    patient = add_patient(owner, "王五")
    his.sandbox_enrol(patient, RECORDS)
    # register() is called from ConsultationsConfig.ready() once wired; here on a copy of the registry.
    monkeypatch.setattr(outside, "_settings", dict(outside._settings))
    his.register()
    assert ("CONSULT_HIS_ADAPTER", "apps.consultations.his.SandboxHisClient") in configured_sandboxes()
    with override_settings(PRODUCTION=True):
        with pytest.raises(SandboxInProduction):
            his.client()
        r = owner.api().post(f"/consultations/patients/{patient.pk}/prior-records/his-sync")
        assert r.status_code == 503 and r.json()["code"] == "consult.his_unavailable"
    assert not PriorRecord.objects.exists()
