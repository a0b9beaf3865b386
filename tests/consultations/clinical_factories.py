"""Visits for the clinical tests, made with the ORM (booking's services are another
module's): a doctor with a profile and a sandbox CA certificate, a patient account
with a 就诊人, a visit in the status asked for, and for a called-in visit its IM
conversation (both members) as ``call`` opens it."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils import timezone

from apps.accounts.models import Patient, StaffProfile
from apps.accounts.roles import Role
from apps.consultations.models import Department, DoctorProfile, Visit
from apps.im import services as im
from apps.im.models import Conversation, Member
from apps.pharmacy.ca import SandboxCaSigner
from tests.conftest import Persona, add_patient, make_patient, make_staff

PIN = "246810"


@dataclass
class Clinic:
    doctor: Persona
    profile: DoctorProfile
    account: Persona  # the patient account that booked
    patient: Patient
    visit: Visit


def make_doctor(username: str, *, enrol: bool = True) -> tuple[Persona, DoctorProfile]:
    doc = make_staff(Role.DOCTOR, username)
    doc.user.display_name = "李医生"
    doc.user.save(update_fields=["display_name"])
    StaffProfile.objects.create(user=doc.user, department="心内科", licence_no="110000000000001", years_of_practice=8)
    dept, _ = Department.objects.get_or_create(code="cardio", defaults={"name": "心内科"})
    profile = DoctorProfile.objects.create(user=doc.user, department=dept, title=DoctorProfile.Title.CHIEF)
    if enrol:
        SandboxCaSigner().enrol(doc.user, pin=PIN)
    return doc, profile


def make_visit(
    doctor: Persona,
    profile: DoctorProfile,
    account: Persona,
    patient: Patient,
    *,
    status: str = Visit.Status.IN_PROGRESS,
) -> Visit:
    now = timezone.now()
    visit = Visit.objects.create(
        patient=patient,
        account=account.user,
        department=profile.department,
        doctor=profile,
        kind="video",
        status=status,
        price_fen=5000,
        chief_complaint="血压控制不佳，复诊调药",
        accepted_at=now,
        called_at=now if status in (Visit.Status.IN_PROGRESS, Visit.Status.ENDED) else None,
        ended_at=now if status == Visit.Status.ENDED else None,
    )
    if status in (Visit.Status.IN_PROGRESS, Visit.Status.ENDED):
        conv = im.conversation_create(
            kind=Conversation.Kind.VISIT,
            members=[(doctor.user, Member.Role.STAFF), (account.user, Member.Role.PATIENT)],
            title="问诊",
            ref_type="visit",
            ref_id=visit.public_id,
        )
        visit.conversation_id = conv.pk
        visit.save(update_fields=["conversation_id"])
    return visit


def make_clinic(status: str = Visit.Status.IN_PROGRESS, *, phone: str = "13900000071") -> Clinic:
    doctor, profile = make_doctor(f"cdoc{phone[-3:]}")
    account = make_patient(phone, "张三")
    patient = add_patient(account, "张三")
    return Clinic(doctor, profile, account, patient, make_visit(doctor, profile, account, patient, status=status))
