"""Prior records (R1): uploads of images / PDF (type sniffed from the bytes, size and count
limited, stored encrypted, served only to readers of the record and audited), who may
list them, and the review by the doctor of a visit citing the record."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from apps.audit.models import AuditEvent
from apps.care_team.models import CareRelationship
from apps.care_team.services import relationship_open
from apps.consultations.models import PriorRecord, Visit
from tests.conftest import Persona, add_patient, make_patient, make_staff
from tests.consultations.clinical_factories import make_doctor, make_visit

pytestmark = pytest.mark.django_db

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x01" * 200
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + b"0" * 300


@pytest.fixture(autouse=True)
def _uploads(settings: Any, tmp_path: Path) -> Path:
    settings.UPLOAD_ROOT = tmp_path
    return tmp_path


@pytest.fixture
def owner() -> Persona:
    return make_patient("13900000091", "赵六")


def _upload(who: Persona, patient_id: int, files: list[tuple[str, bytes]], **fields: Any) -> Any:
    data: dict[str, Any] = {
        "hospital": "市第一人民医院",
        "visit_date": "2026-10-08",
        "diagnosis": "原发性高血压",
        "summary": "出院小结：血压控制可",
        **fields,
        "files": [SimpleUploadedFile(name, content) for name, content in files],
    }
    return Client().post(
        f"/api/v1/consultations/patients/{patient_id}/prior-records",
        data,
        HTTP_AUTHORIZATION=f"Bearer {who.api().token}",
    )


def _fetch(who: Persona, url: str) -> Any:
    return Client().get(url, HTTP_AUTHORIZATION=f"Bearer {who.api().token}")


def test_upload_stores_pages_encrypted_and_serves_them_to_readers_only(owner: Persona, _uploads: Path) -> None:
    patient = add_patient(owner, "赵六")
    r = _upload(owner, patient.pk, [("page1.jpg", JPEG), ("summary.pdf", PDF)])
    assert r.status_code == 201, r.json()
    body = r.json()
    assert body["review"] == "pending" and body["review_label"] == "待医生审核" and body["source"] == "upload"
    assert [f["content_type"] for f in body["files"]] == ["image/jpeg", "application/pdf"]
    # On disk: ciphertext, not the page.
    stored = [p for p in _uploads.rglob("*") if p.is_file()]
    assert len(stored) == 2 and all(JPEG[:40] not in p.read_bytes() and b"%PDF" not in p.read_bytes() for p in stored)
    # The owner reads the page back byte for byte; the read is audited.
    got = _fetch(owner, body["files"][0]["url"])
    assert got.status_code == 200 and got.content == JPEG and got["Content-Type"] == "image/jpeg"
    assert got["X-Content-Type-Options"] == "nosniff"
    assert AuditEvent.objects.filter(action="consult.prior_file_read", actor_id=owner.user.pk).exists()
    # A stranger and a doctor without a visit citing it get 404 (audited), for the list and the page.
    stranger = make_patient("13900000092", "路人")
    doctor, _ = make_doctor("prdoc1", enrol=False)
    for who in (stranger, doctor):
        assert _fetch(who, body["files"][0]["url"]).status_code == 404
        assert who.api().get(f"/consultations/patients/{patient.pk}/prior-records").status_code == 404
    assert AuditEvent.objects.filter(action="consult.prior_record_denied", actor_id=stranger.user.pk).exists()
    listed = owner.api().get(f"/consultations/patients/{patient.pk}/prior-records").json()
    assert [x["id"] for x in listed] == [body["id"]] and listed[0]["diagnosis"] == "原发性高血压"


def test_staff_in_care_list_the_records(owner: Persona) -> None:
    patient = add_patient(owner, "赵六")
    assert _upload(owner, patient.pk, [("a.png", b"\x89PNG\r\n\x1a\n" + b"0" * 64)]).status_code == 201
    nurse = make_staff("nurse", "prnurse")
    assert nurse.api().get(f"/consultations/patients/{patient.pk}/prior-records").status_code == 404
    relationship_open(staff=nurse.user, patient=patient, reason=CareRelationship.Reason.CARE_PLAN)
    rows = nurse.api().get(f"/consultations/patients/{patient.pk}/prior-records").json()
    assert len(rows) == 1 and rows[0]["hospital"] == "市第一人民医院"


@pytest.mark.parametrize(
    ("files", "reason"),
    [
        ([("fake.jpg", b"MZ\x90\x00 this is an exe")], "不是图片或PDF"),
        ([("notes.txt", "病历文字".encode())], "不是图片或PDF"),
        ([(f"p{i}.jpg", JPEG) for i in range(10)], "最多上传9个文件"),
        ([("ok.jpg", JPEG), ("big.pdf", b"%PDF-1.4\n" + b"0" * (1024 * 1024 + 1))], "超过1MB"),
    ],
)
def test_refused_uploads_write_nothing(
    owner: Persona, settings: Any, _uploads: Path, files: list[tuple[str, bytes]], reason: str
) -> None:
    settings.CONSULT_PRIOR_FILE_MAX_MB = 1  # the limit is a setting (10 MB by default): a small one here
    patient = add_patient(owner, "赵六")
    r = _upload(owner, patient.pk, files)
    assert r.status_code == 422 and r.json()["code"] == "consult.upload_invalid", r.json()
    assert reason in r.json()["message"]
    assert not PriorRecord.objects.exists()
    assert not [p for p in _uploads.rglob("*") if p.is_file()]


def test_the_default_limit_is_ten_megabytes(owner: Persona, _uploads: Path) -> None:
    patient = add_patient(owner, "赵六")
    big = JPEG + b"0" * (10 * 1024 * 1024)
    r = _upload(owner, patient.pk, [("big.jpg", big)])
    assert r.status_code == 422 and "超过10MB" in r.json()["message"]
    assert not PriorRecord.objects.exists()


def test_only_the_owner_uploads_and_fields_are_checked(owner: Persona) -> None:
    patient = add_patient(owner, "赵六")
    other = make_patient("13900000093", "钱七")
    assert _upload(other, patient.pk, [("a.jpg", JPEG)]).status_code == 404
    tomorrow = (dt.date.today() + dt.timedelta(days=2)).isoformat()
    assert _upload(owner, patient.pk, [], visit_date=tomorrow).status_code == 422
    assert _upload(owner, patient.pk, [], diagnosis=" ").status_code == 422
    assert not PriorRecord.objects.exists()


def test_the_doctor_of_a_citing_visit_reviews_it(owner: Persona) -> None:
    patient = add_patient(owner, "赵六")
    record_id = _upload(owner, patient.pk, [("a.jpg", JPEG)]).json()["id"]
    record = PriorRecord.objects.get(public_id=record_id)
    doctor, profile = make_doctor("prdoc2", enrol=False)
    other_doctor, _ = make_doctor("prdoc3", enrol=False)
    visit = make_visit(doctor, profile, owner, patient, status=Visit.Status.WAITING)
    visit.prior_record = record
    visit.save(update_fields=["prior_record"])
    # Not the doctor of a visit citing it: 404, unchanged.
    r = other_doctor.api().post(f"/consultations/prior-records/{record_id}/review", {"decision": "accepted"})
    assert r.status_code == 404
    # The patient is no doctor.
    assert (
        owner.api().post(f"/consultations/prior-records/{record_id}/review", {"decision": "accepted"}).status_code
        == 403
    )
    # Rejecting needs a reason.
    r = doctor.api().post(f"/consultations/prior-records/{record_id}/review", {"decision": "rejected"})
    assert r.status_code == 422
    record.refresh_from_db()
    assert record.review == "pending" and record.reviewed_by is None
    # The citing doctor reads it (that record only) and accepts it.
    rows = doctor.api().get(f"/consultations/patients/{patient.pk}/prior-records").json()
    assert [x["id"] for x in rows] == [record_id]
    file_url = rows[0]["files"][0]["url"]
    assert _fetch(doctor, file_url).status_code == 200
    r = doctor.api().post(
        f"/consultations/prior-records/{record_id}/review", {"decision": "accepted", "note": "出院小结清晰"}
    )
    assert r.status_code == 200 and r.json()["review"] == "accepted" and r.json()["review_label"] == "医生已确认"
    record.refresh_from_db()
    assert record.reviewed_by == doctor.user and record.review_note == "出院小结清晰"
    event = AuditEvent.objects.get(action="consult.prior_record_review")
    assert event.detail == {"decision": "accepted"}  # no clinical content in the audit
