"""Pharmacy demo content (registered with apps.accounts.demo): 李医生 gets a sandbox
signing certificate (PIN 123456), 王芳 a recorded penicillin allergy, 张伟 a signed
long-term prescription waiting in 王药师's review queue, and 王芳 one the pharmacist
rejected, so the doctor has a prescription to revise. Idempotent: nothing is added
while 张伟 has a prescription that has not expired or been cancelled (a demo started
days later gets a fresh pair, valid for 3 days)."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings

from apps.accounts.demo import demo_patient
from apps.accounts.models import Patient, User
from apps.accounts.roles import Role

from . import ca, services
from .models import PatientAllergy, Prescription
from .rules import DraftInput, LineInput

FAMILY_PHONE = "13800138001"
DEMO_PIN = "123456"


def seed_pharmacy() -> str:
    if settings.PRODUCTION or settings.PHARMACY_CA_SIGNER != "sandbox":
        return ""
    doctor = User.objects.filter(username="doctor", role=Role.DOCTOR, is_active=True).first()
    pharmacist = User.objects.filter(username="pharmacist", role=Role.PHARMACIST, is_active=True).first()
    account = demo_patient(FAMILY_PHONE)
    if doctor is None or pharmacist is None or account is None:
        return ""
    me = Patient.objects.filter(owner=account, name="张伟", is_active=True).first()
    spouse = Patient.objects.filter(owner=account, name="王芳", is_active=True).first()
    if me is None or spouse is None:
        return ""
    ended = [Prescription.Status.EXPIRED, Prescription.Status.CANCELLED]
    if Prescription.objects.filter(patient=me).exclude(status__in=ended).exists():
        return ""
    signer = ca.SandboxCaSigner()
    info = signer.certificate(doctor)
    if info is None or info.revoked:
        signer.enrol(doctor, pin=DEMO_PIN)
    if not PatientAllergy.objects.filter(patient=spouse).exists():
        services.allergy_add(actor=doctor, patient_id=spouse.pk, allergen="青霉素类", reaction="皮疹")

    chronic = services.prescription_create(
        doctor=doctor,
        patient_id=me.pk,
        draft=DraftInput(
            diagnosis="原发性高血压（2级），病情稳定，复诊续方",
            icd10_code="I10",
            valid_days=3,
            chronic_reason="高血压病情稳定，长期规律服药",
            lines=[
                LineInput(
                    drug_code="AMLO-5", dose=Decimal("5"), frequency="qd", route="po", days=28, quantity=Decimal("1")
                ),
                LineInput(
                    drug_code="ATOR-20", dose=Decimal("20"), frequency="qn", route="po", days=28, quantity=Decimal("4")
                ),
            ],
        ),
    )
    services.prescription_sign(doctor=doctor, prescription_id=chronic.pk, pin=DEMO_PIN)
    services.prescription_submit(doctor=doctor, prescription_id=chronic.pk)

    cold = services.prescription_create(
        doctor=doctor,
        patient_id=spouse.pk,
        draft=DraftInput(
            diagnosis="过敏性鼻炎复诊",
            icd10_code="J30.4",
            valid_days=3,
            lines=[
                LineInput(
                    drug_code="LORA-10", dose=Decimal("10"), frequency="bid", route="po", days=7, quantity=Decimal("3")
                )
            ],
        ),
    )
    services.prescription_sign(doctor=doctor, prescription_id=cold.pk, pin=DEMO_PIN)
    services.prescription_submit(doctor=doctor, prescription_id=cold.pk)
    services.prescription_reject(
        pharmacist=pharmacist, prescription_id=cold.pk, reason="氯雷他定常规每日一次，请核对用药频次"
    )
    # One approved and payable: 张伟 pays it in the app (我的处方 -> 去支付) and picks delivery or pickup.
    acute = services.prescription_create(
        doctor=doctor,
        patient_id=me.pk,
        draft=DraftInput(
            diagnosis="急性上呼吸道感染复诊",
            icd10_code="J06.9",
            valid_days=3,
            lines=[
                LineInput(
                    drug_code="LORA-10", dose=Decimal("10"), frequency="qd", route="po", days=5, quantity=Decimal("1")
                )
            ],
        ),
    )
    services.prescription_sign(doctor=doctor, prescription_id=acute.pk, pin=DEMO_PIN)
    services.prescription_submit(doctor=doctor, prescription_id=acute.pk)
    services.prescription_approve(pharmacist=pharmacist, prescription_id=acute.pk)
    return (
        "处方 张伟 一张长期处方待王药师审核、一张已审核待支付；王芳 一张被药师驳回待李医生修改（演示签名密码 123456）"
    )
