"""Shared helpers of the booking-side tests (no tests here): a department, a
qualified doctor with a profile, slots, a patient account with a 就诊人 and a
hospital record on file (R1), booking and paying through the real commerce path
(the fake gateway of tests/commerce)."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from apps.accounts.models import Patient, StaffProfile
from apps.accounts.roles import Role
from apps.commerce import services as commerce
from apps.commerce.models import Order
from apps.consultations import services
from apps.consultations.models import Department, DoctorProfile, PriorRecord, Slot, Visit
from tests.conftest import Persona, add_patient, make_patient, make_staff

_serial = itertools.count(1)


@dataclass
class Doc:
    persona: Persona
    profile: DoctorProfile

    @property
    def user(self) -> Any:
        return self.persona.user


@dataclass
class Booker:
    account: Persona
    patient: Patient
    record: PriorRecord


def department(code: str = "cardiology", name: str = "心血管内科") -> Department:
    return Department.objects.get_or_create(code=code, defaults={"name": name})[0]


def doctor(
    dept: Department | None = None,
    *,
    years: int = 10,
    licence: str = "110440000000001",
    online: bool = True,
    text_fen: int = 3000,
    video_fen: int = 6000,
) -> Doc:
    n = next(_serial)
    persona = make_staff(Role.DOCTOR, f"cdoc{n}")
    StaffProfile.objects.update_or_create(
        user=persona.user, defaults={"licence_no": licence, "years_of_practice": years, "department": "心内科"}
    )
    profile = DoctorProfile.objects.create(
        user=persona.user,
        department=dept or department(),
        price_text_fen=text_fen,
        price_video_fen=video_fen,
        is_online=online,
    )
    return Doc(persona=persona, profile=profile)


def slot(doc: Doc, *, capacity: int = 10, kind: str = "text", hours_ahead: int = 2) -> Slot:
    start = timezone.now() + dt.timedelta(hours=hours_ahead)
    return Slot.objects.create(
        doctor=doc.profile, kind=kind, starts_at=start, ends_at=start + dt.timedelta(hours=1), capacity=capacity
    )


def booker(
    *,
    record: str | None = "his",
    review: str = PriorRecord.Review.ACCEPTED,
    birth: dt.date = dt.date(1970, 5, 1),
    name: str = "张伟",
) -> Booker:
    n = next(_serial)
    account = make_patient(f"139{n:08d}", name)
    patient = add_patient(account, name, birth=birth)
    prior = None
    if record is not None:
        prior = PriorRecord.objects.create(
            patient=patient,
            source=record,
            his_ref=f"HIS-{n}" if record == "his" else "",
            hospital="本院",
            diagnosis="原发性高血压",
            icd10_code="I10",
            review=review if record == "upload" else PriorRecord.Review.ACCEPTED,
        )
    return Booker(account=account, patient=patient, record=prior)  # type: ignore[arg-type]


def book(b: Booker, doc: Doc | None, s: Slot | None, *, kind: str = "text", dept: str = "", **extra: Any) -> Visit:
    return services.visit_book(
        account=b.account.user,
        data=services.BookingInput(
            patient_id=b.patient.pk,
            kind=kind,
            chief_complaint="高血压复诊，血压波动",
            doctor_id=doc.profile.pk if doc else None,
            slot_id=s.pk if s else None,
            department=dept,
            **extra,
        ),
    )


def pay(gateway: Any, visit: Visit, capture: Any) -> Visit:
    with capture(execute=True):
        commerce.payment_notice_apply(gateway.pay(visit.order_no))
    visit.refresh_from_db()
    return visit


def order_of(visit: Visit) -> Order:
    return Order.objects.get(order_no=visit.order_no)


def accept(doc: Doc, visit: Visit) -> Visit:
    api = doc.persona.api()
    r = api.post(
        f"/consultations/visits/{visit.public_id}/step-up", {"method": "password", "password": doc.persona.password}
    )
    assert r.status_code == 200, r.json()
    r = api.post(f"/consultations/visits/{visit.public_id}/accept", {"confirm_followup": True})
    assert r.status_code == 200, r.json()
    visit.refresh_from_db()
    return visit
