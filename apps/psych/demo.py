"""Psych history for the demo (registered with apps.accounts.demo): in 张伟's family,
王芳 completed PHQ-9 twice (the second with item 9 positive, so the doctor has an open
alert and a report to sign, and the report a trend) and 张小明 has a GAD-7 to fill, so
the patient's home shows a to-do. 张伟 himself is left without scales (the doctor's
first assignment in the demo). Idempotent: nothing is added once 王芳 has a result."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from apps.accounts.demo import demo_patient
from apps.accounts.models import Patient, User
from apps.accounts.roles import Role

from . import services
from .models import Result

FAMILY_PHONE = "13800138001"


def seed_psych_history() -> str:
    doctor = User.objects.filter(username="doctor", role=Role.DOCTOR, is_active=True).first()
    account = demo_patient(FAMILY_PHONE)
    if doctor is None or account is None:
        return ""
    spouse = Patient.objects.filter(owner=account, name="王芳", is_active=True).first()
    child = Patient.objects.filter(owner=account, name="张小明", is_active=True).first()
    if spouse is None or child is None or Result.objects.filter(patient=spouse).exists():
        return ""
    week = timezone.now() + dt.timedelta(days=7)
    (earlier,) = services.assignments_create(doctor=doctor, patient_id=spouse.pk, scale_codes=["PHQ-9"], due_at=week)
    services.assignment_submit(
        user=account, assignment_id=earlier.pk, answers={n: (2 if n <= 5 else 1 if n <= 8 else 0) for n in range(1, 10)}
    )
    (later,) = services.assignments_create(doctor=doctor, patient_id=spouse.pk, scale_codes=["PHQ-9"], due_at=week)
    services.assignment_submit(
        user=account, assignment_id=later.pk, answers={n: (1 if n <= 4 else 0) for n in range(1, 9)} | {9: 1}
    )
    services.assignments_create(doctor=doctor, patient_id=child.pk, scale_codes=["GAD-7"], due_at=week)
    return "心理测评 王芳 已完成 PHQ-9 两次（第二次第9题阳性，李医生有一条待处理预警）；张小明 有一份 GAD-7 待填写"
