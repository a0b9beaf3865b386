from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pytest
from django.utils import timezone

from apps.accounts.models import Patient, StaffProfile
from apps.accounts.roles import Role
from apps.im import services as im_services
from apps.im.models import Conversation
from tests.conftest import Persona, add_patient, make_patient, make_staff


def make_doctor(username: str, department: str = "精神心理科") -> Persona:
    doc = make_staff(Role.DOCTOR, username)
    doc.user.set_phone(f"1370000{doc.user.pk:04d}")
    doc.user.save(update_fields=["phone_enc", "phone_hash"])
    StaffProfile.objects.create(user=doc.user, department=department, licence_no="110000000000001", years_of_practice=8)
    return doc


@dataclass
class Care:
    doctor: Persona
    account: Persona  # the patient account (owner)
    me: Patient  # 就诊人: self
    child: Patient  # 就诊人: family member
    conversation: Conversation


@pytest.fixture
def care(db: Any) -> Care:
    """A doctor who shares a visit conversation with a patient account that
    manages two 就诊人 (self and a child)."""
    doctor = make_doctor("psydoc")
    account = make_patient("13900000021", "张三")
    me = add_patient(account, "张三")
    child = add_patient(account, "张小明", relation="child", birth=dt.date(2012, 5, 1))
    conv = im_services.conversation_for_pair(staff=doctor.user, patient=account.user)
    return Care(doctor=doctor, account=account, me=me, child=child, conversation=conv)


def due(days: int = 7) -> str:
    return (timezone.localdate() + dt.timedelta(days=days)).isoformat()
