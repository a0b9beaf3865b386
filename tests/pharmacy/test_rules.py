"""Each prescription rule refuses with its own code and writes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from apps.audit.models import AuditEvent
from apps.core.models import TransitionEvent
from apps.pharmacy import allergies
from apps.pharmacy.allergies import Allergy, register_allergy_source
from apps.pharmacy.models import PatientAllergy, Prescription, PrescriptionLine
from tests.conftest import make_patient

from .conftest import Rx, add_patient, draft, line, make_doctor


def _nothing_written(before_audit: int) -> None:
    assert Prescription.objects.count() == 0
    assert PrescriptionLine.objects.count() == 0
    assert TransitionEvent.objects.filter(object_type="pharmacy.prescription").count() == 0
    assert AuditEvent.objects.count() == before_audit


def _refused(rx: Rx, body: dict[str, Any], code: str, status: int = 422) -> dict[str, Any]:
    before = AuditEvent.objects.count()
    r = rx.doctor.api().post("/pharmacy/prescriptions", body)
    assert r.status_code == status, r.content
    assert r.json()["code"] == code
    _nothing_written(before)
    return r.json()


@pytest.mark.django_db
def test_a_valid_prescription_is_written_with_who_entered_each_line(rx: Rx) -> None:
    r = rx.doctor.api().post("/pharmacy/prescriptions", draft(rx.me))
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["status"] == "draft" and body["kind"] == "western"
    assert body["lines"][0]["drug_name"] == "苯磺酸氨氯地平片" and body["lines"][0]["frequency_label"] == "每日一次"
    assert body["allowed_actions"] == ["edit", "sign", "cancel"]
    p = Prescription.objects.get()
    assert p.doctor_id == rx.doctor.user.pk
    assert set(p.lines.values_list("entered_by", flat=True)) == {rx.doctor.user.pk}
    # the diagnosis is stored encrypted, not as text
    assert "高血压" not in p.diagnosis_enc and p.diagnosis == "原发性高血压，复诊"


@pytest.mark.django_db
@pytest.mark.parametrize("code", ["DIAZ-25", "MORP-10"])
def test_a_controlled_drug_cannot_be_prescribed(rx: Rx, code: str) -> None:
    body = _refused(
        rx, draft(rx.me, [line(code, dose="2.5", frequency="qn", quantity="1")]), "pharmacy.controlled_drug"
    )
    assert body["detail"]["controlled_class"] in ("psychotropic_2", "narcotic")
    assert "互联网医院不得开具" in body["message"]


@pytest.mark.django_db
def test_a_sixth_drug_is_refused_and_five_are_accepted(rx: Rx) -> None:
    five = [
        line("AMLO-5"),
        line("ATOR-20", dose="20", frequency="qn"),
        line("ASPI-100", dose="100"),
        line("OMEP-20", dose="20"),
        line("METF-05", dose="0.5", frequency="tid"),
    ]
    body = _refused(rx, draft(rx.me, [*five, line("LORA-10", dose="10")]), "pharmacy.too_many_drugs")
    assert body["detail"] == {"max": 5, "count": 6}
    assert rx.doctor.api().post("/pharmacy/prescriptions", draft(rx.me, five)).status_code == 201


@pytest.mark.django_db
def test_an_eighth_supply_day_needs_a_chronic_reason(rx: Rx) -> None:
    body = _refused(rx, draft(rx.me, [line(days=8)]), "pharmacy.supply_days_exceeded")
    assert body["detail"] == {"position": 1, "days": 8, "max_days": 7}
    # 长期处方: with a reason up to the limit (84 days), never beyond
    _refused(
        rx,
        draft(rx.me, [line(days=85, quantity="4")], chronic_reason="高血压病情稳定"),
        "pharmacy.chronic_days_exceeded",
    )
    ok = rx.doctor.api().post(
        "/pharmacy/prescriptions", draft(rx.me, [line(days=28, quantity="1")], chronic_reason="高血压病情稳定")
    )
    assert ok.status_code == 201 and ok.json()["chronic_reason"] == "高血压病情稳定"


@pytest.mark.django_db
def test_the_quantity_may_not_supply_more_days_than_written(rx: Rx) -> None:
    # 5 mg daily for 7 days is 35 mg: one box of 28 x 5 mg; two boxes would be 56 days.
    body = _refused(rx, draft(rx.me, [line(quantity="2")]), "pharmacy.quantity_exceeds_days")
    assert body["detail"]["max_quantity"] == "1"


@pytest.mark.django_db
def test_decoction_pieces_go_on_their_own_prescription(rx: Rx) -> None:
    pieces = [line(code, dose="10", route="decoct", quantity="70") for code in ("YP-HQ", "YP-DG", "YP-FL", "YP-GC")]
    _refused(rx, draft(rx.me, [*pieces, line("AMLO-5")]), "pharmacy.tcm_pieces_mixed")
    _refused(
        rx,
        draft(rx.me, [line("LHQW-035", dose="4", frequency="tid", quantity="1"), pieces[0]]),
        "pharmacy.tcm_pieces_mixed",
    )
    tea = line("TEA-JHJM", dose="1", frequency="bid", route="infuse", quantity="1")
    r = rx.doctor.api().post("/pharmacy/prescriptions", draft(rx.me, [*pieces, tea], diagnosis="气血两虚"))
    assert r.status_code == 201, r.content
    assert r.json()["kind"] == "tcm"


@pytest.mark.django_db
def test_a_drug_the_patient_is_allergic_to_is_refused(rx: Rx) -> None:
    row = PatientAllergy(patient=rx.me, source=PatientAllergy.Source.PATIENT_REPORTED, recorded_by=rx.account.user)
    row.set_text(allergen="青霉素类", reaction="皮疹")
    row.save()
    body = _refused(
        rx, draft(rx.me, [line("AMOX-025", dose="0.5", frequency="tid", quantity="1")]), "pharmacy.allergy_conflict"
    )
    assert body["detail"]["source"] == "patient_reported" and body["detail"]["drug_code"] == "AMOX-025"
    assert "青霉素类" in body["message"] and "患者自述" in body["message"]
    # another drug is fine; the child (no allergy recorded) may have amoxicillin
    assert (
        rx.doctor.api().post("/pharmacy/prescriptions", draft(rx.me, [line("LORA-10", dose="10")])).status_code == 201
    )


@pytest.mark.django_db
def test_every_registered_allergy_source_is_checked(rx: Rx) -> None:
    def his(patient_id: int) -> list[Allergy]:
        return (
            [Allergy(allergen="头孢菌素类", reaction="", source="his", source_label="HIS过敏记录")]
            if patient_id == rx.me.pk
            else []
        )

    register_allergy_source("test_his", his)
    try:
        body = _refused(
            rx,
            draft(rx.me, [line("CEFU-025", dose="0.25", frequency="bid", quantity="2")]),
            "pharmacy.allergy_conflict",
        )
        assert body["detail"]["source"] == "his"
    finally:
        allergies._sources.pop("test_his")


@pytest.mark.django_db
def test_a_source_that_cannot_be_read_refuses_the_check(rx: Rx) -> None:
    def broken(patient_id: int) -> list[Allergy]:
        raise ConnectionError("HIS down")

    register_allergy_source("test_broken", broken)
    try:
        body = _refused(rx, draft(rx.me), "pharmacy.allergy_source_unavailable", status=503)
        assert body["detail"] == {"source": "test_broken"}
    finally:
        allergies._sources.pop("test_broken")


@pytest.mark.django_db
def test_a_child_under_six_needs_a_guardian(rx: Rx) -> None:
    lines = [line("LORA-10", dose="5", quantity="1")]
    body = _refused(
        rx, draft(rx.child, lines, diagnosis="过敏性鼻炎", icd10_code="J30.4"), "pharmacy.guardian_required"
    )
    assert body["detail"] == {"age": 3}
    _refused(
        rx,
        draft(
            rx.child,
            lines,
            diagnosis="过敏性鼻炎",
            guardian={"name": "张三", "relation": "father", "id_number": "440106198003141234"},
        ),
        "pharmacy.guardian_id_invalid",
    )
    ok = rx.doctor.api().post(
        "/pharmacy/prescriptions",
        draft(rx.child, lines, diagnosis="过敏性鼻炎", guardian={"name": "张三", "relation": "father"}),
    )
    assert ok.status_code == 201, ok.content
    assert ok.json()["guardian"]["relation_label"] == "父亲"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"valid_days": 4}, "pharmacy.valid_days_invalid"),
        ({"icd10_code": "高血压"}, "pharmacy.diagnosis_code_invalid"),
        ({"diagnosis": "  "}, "pharmacy.diagnosis_required"),
        ({"lines": []}, "pharmacy.no_lines"),
        ({"lines": [line("NOPE")]}, "pharmacy.drug_unknown"),
        ({"lines": [line(frequency="tid-ish")]}, "pharmacy.frequency_unknown"),
        ({"lines": [line(), line()]}, "pharmacy.duplicate_drug"),
        ({"guardian": {"name": "张三", "relation": "uncle"}}, "validation_error"),
    ],
)
def test_other_content_rules(rx: Rx, change: dict[str, Any], code: str) -> None:
    _refused(rx, {**draft(rx.me), **change}, code)


@pytest.mark.django_db
def test_only_the_treating_doctor_prescribes_and_others_get_the_same_404(rx: Rx) -> None:
    stranger = make_doctor("otherdoc")
    other_account = make_patient("13900000052", "李四")
    other = add_patient(other_account, "李四")
    before = AuditEvent.objects.count()
    not_mine = stranger.api().post("/pharmacy/prescriptions", draft(rx.me))
    missing = stranger.api().post("/pharmacy/prescriptions", draft(rx.me, patient_id=999999))
    not_in_care = rx.doctor.api().post("/pharmacy/prescriptions", draft(other))
    assert not_mine.status_code == missing.status_code == not_in_care.status_code == 404
    assert not_mine.json() == missing.json()
    assert Prescription.objects.count() == 0
    denied = AuditEvent.objects.filter(action="pharmacy.access_denied", result="denied")
    assert denied.count() == 3 and AuditEvent.objects.count() == before + 3
    # not a doctor: forbidden
    assert rx.pharmacist.api().post("/pharmacy/prescriptions", draft(rx.me)).status_code == 403
