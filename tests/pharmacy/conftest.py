from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pytest

from apps.accounts.models import Patient, StaffProfile
from apps.accounts.roles import Role
from apps.care_team.models import CareRelationship
from apps.care_team.services import relationship_open
from apps.pharmacy.ca import SandboxCaSigner
from tests.conftest import Persona, add_patient, make_patient, make_staff

PIN = "246810"


def make_doctor(username: str) -> Persona:
    doc = make_staff(Role.DOCTOR, username)
    StaffProfile.objects.create(user=doc.user, department="心内科", licence_no="110000000000001", years_of_practice=8)
    return doc


def enrol(doctor: Persona, pin: str = PIN, **kwargs: Any) -> None:
    SandboxCaSigner().enrol(doctor.user, pin=pin, **kwargs)


@dataclass
class Rx:
    doctor: Persona
    pharmacist: Persona
    account: Persona  # the patient account
    me: Patient  # adult 就诊人
    child: Patient  # a 就诊人 under 6


@pytest.fixture
def rx(db: Any) -> Rx:
    """A doctor holding an adult and a small child in care (recorded relationships),
    with a sandbox certificate under PIN; a pharmacist."""
    doctor = make_doctor("rxdoc")
    pharmacist = make_staff(Role.PHARMACIST, "rxpharm")
    account = make_patient("13900000051", "张三")
    me = add_patient(account, "张三")
    today = dt.date.today()
    child = add_patient(account, "张小宝", relation="child", birth=today.replace(year=today.year - 3))
    for p in (me, child):
        relationship_open(staff=doctor.user, patient=p, reason=CareRelationship.Reason.CARE_PLAN)
    enrol(doctor)
    return Rx(doctor=doctor, pharmacist=pharmacist, account=account, me=me, child=child)


def line(code: str = "AMLO-5", dose: str = "5", frequency: str = "qd", days: int = 7, quantity: str = "1", **kw: Any):
    return {
        "drug_code": code,
        "dose": dose,
        "frequency": frequency,
        "route": kw.pop("route", "po"),
        "days": days,
        "quantity": quantity,
        **kw,
    }


def draft(patient: Patient, lines: list[dict[str, Any]] | None = None, **kw: Any) -> dict[str, Any]:
    return {
        "patient_id": patient.pk,
        "diagnosis": kw.pop("diagnosis", "原发性高血压，复诊"),
        "icd10_code": kw.pop("icd10_code", "I10"),
        # Three days unless a test says otherwise, so a run across midnight (Beijing) stays valid.
        "valid_days": kw.pop("valid_days", 3),
        "lines": lines if lines is not None else [line()],
        **kw,
    }
