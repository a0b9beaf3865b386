"""Roles and what they imply. One account holds exactly one role, so the three
administrative roles (三权分立) can never be combined on one account."""

from __future__ import annotations

from django.db import models


class Role(models.TextChoices):
    PATIENT = "patient", "患者"
    DOCTOR = "doctor", "医生"
    PHARMACIST = "pharmacist", "药师"
    NURSE = "nurse", "护士"
    THERAPIST = "therapist", "康复治疗师"
    DIETITIAN = "dietitian", "营养师"
    CS_AGENT = "cs_agent", "客服"
    SYSADMIN = "sysadmin", "系统管理员"
    SECADMIN = "secadmin", "安全管理员"
    AUDITOR = "auditor", "审计员"


ADMIN_ROLES = frozenset({Role.SYSADMIN, Role.SECADMIN, Role.AUDITOR})
STAFF_ROLES = frozenset(r for r in Role if r != Role.PATIENT)
CLINICAL_ROLES = frozenset({Role.DOCTOR, Role.PHARMACIST, Role.NURSE, Role.THERAPIST, Role.DIETITIAN})
TOTP_ROLES = frozenset({Role.DOCTOR, Role.PHARMACIST, Role.SYSADMIN, Role.SECADMIN, Role.AUDITOR})
# Roles allowed to see full identifiers of patients they are authorised for.
UNMASKED_ID_ROLES = frozenset({Role.DOCTOR, Role.PHARMACIST, Role.NURSE})
