"""Reads of the accounts domain, shaped for the API with masking by role."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from hub import crypto

from .models import ConsentRecord, LoginThrottle, Patient, StaffProfile, User
from .roles import TOTP_ROLES, UNMASKED_ID_ROLES, Role


def user_public(user: User) -> dict[str, Any]:
    from .passwords import password_expired

    phone = user.phone
    profile = StaffProfile.objects.filter(user=user).first() if user.is_staff_role else None
    return {
        "id": user.pk,
        "username": user.username,
        "display_name": user.display_name,
        "role": user.role,
        "role_label": Role(user.role).label,
        "phone_masked": crypto.mask_phone(phone) if phone else "",
        "is_staff_role": user.is_staff_role,
        "must_change_password": user.is_staff_role and password_expired(user),
        "department": profile.department if profile else "",
        "title": profile.title if profile else "",
    }


def user_admin_row(user: User, locked_until: Any = None) -> dict[str, Any]:
    phone = user.phone
    profile = StaffProfile.objects.filter(user=user).first()
    totp_state = "" if user.role not in TOTP_ROLES else ("enrolled" if user.totp_confirmed_at else "pending")
    return {
        "id": user.pk,
        "username": user.username,
        "display_name": user.display_name,
        "role": user.role,
        "role_label": Role(user.role).label,
        "is_active": user.is_active,
        "locked_until": locked_until,
        "last_login": user.last_login,
        "phone_masked": crypto.mask_phone(phone) if phone else "",
        "department": profile.department if profile else "",
        "title": profile.title if profile else "",
        "totp_state": totp_state,
        "totp_state_label": {"": "不适用", "pending": "待首次登录绑定", "enrolled": "已绑定"}[totp_state],
    }


def users_for_admin(*, role: str = "", q: str = "") -> QuerySet[User]:
    qs = User.objects.exclude(role=Role.PATIENT).order_by("id")
    if role:
        qs = qs.filter(role=role)
    if q:
        qs = qs.filter(Q(username__icontains=q) | Q(display_name__icontains=q))
    return qs


def locks_for(usernames: list[str]) -> dict[str, Any]:
    now = timezone.now()
    rows = LoginThrottle.objects.filter(username__in=usernames, locked_until__gt=now)
    result: dict[str, Any] = {}
    for row in rows:
        if row.locked_until and (row.username not in result or row.locked_until > result[row.username]):
            result[row.username] = row.locked_until
    return result


def age_of(patient: Patient, today: dt.date | None = None) -> int:
    """Full years in Beijing time today."""
    today = today or timezone.localdate()
    b = patient.birth_date
    return today.year - b.year - ((today.month, today.day) < (b.month, b.day))


def patients_of(owner: User) -> QuerySet[Patient]:
    return Patient.objects.filter(owner=owner, is_active=True).order_by("id")


def patient_view(patient: Patient, *, viewer: User) -> dict[str, Any]:
    """Identifiers are masked unless the viewer's role needs them in full."""
    id_number, phone = patient.id_number, patient.phone
    full = viewer.role in UNMASKED_ID_ROLES
    return {
        "id": patient.pk,
        "name": patient.name,
        "relation": patient.relation,
        "relation_label": Patient.Relation(patient.relation).label,
        "id_number_masked": id_number if full else crypto.mask_id_number(id_number),
        "phone_masked": phone if full else (crypto.mask_phone(phone) if phone else ""),
        "sex": patient.sex,
        "sex_label": Patient.Sex(patient.sex).label,
        "birth_date": patient.birth_date,
        "is_self": patient.relation == Patient.Relation.SELF,
    }


def consents_of(user: User) -> list[dict[str, Any]]:
    latest: dict[str, ConsentRecord] = {}
    for record in ConsentRecord.objects.filter(user=user).order_by("at", "id"):
        latest[record.purpose] = record
    return [
        {
            "purpose": purpose.value,
            "purpose_label": purpose.label,
            "granted": bool(latest.get(purpose.value) and latest[purpose.value].granted),
            "updated_at": latest[purpose.value].at if purpose.value in latest else None,
        }
        for purpose in ConsentRecord.Purpose
    ]


def has_consent(user: User, purpose: str) -> bool:
    record = ConsentRecord.objects.filter(user=user, purpose=purpose).order_by("-at", "-id").first()
    return bool(record and record.granted)
