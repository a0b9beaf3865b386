"""Persona factories for new tests: import from here, not from conftest.

``make_staff`` and ``make_patient`` (and their ``Persona``) are the conftest
helpers the existing tests use, re-exported so there is one implementation;
``make_pair`` adds a clinician and a patient who share a conversation."""

from __future__ import annotations

from dataclasses import dataclass

from apps.accounts.roles import Role
from apps.im import services as im_services
from apps.im.models import Conversation
from tests.conftest import STRONG, Api, Persona, make_patient, make_staff

__all__ = ["STRONG", "Api", "Pair", "Persona", "make_pair", "make_patient", "make_staff"]


@dataclass
class Pair:
    staff: Persona
    patient: Persona
    conversation: Conversation


def make_pair(
    *,
    role: str = Role.DOCTOR,
    phone: str = "13900000099",
    kind: str = Conversation.Kind.VISIT,
    ref_type: str = "",
    ref_id: str = "",
) -> Pair:
    """A staff member of ``role`` and a new patient account with their open
    conversation of ``kind`` (created through ``im.services.conversation_for_pair``)."""
    staff = make_staff(role)
    patient = make_patient(phone)
    conversation = im_services.conversation_for_pair(
        staff=staff.user, patient=patient.user, kind=kind, ref_type=ref_type, ref_id=ref_id
    )
    return Pair(staff=staff, patient=patient, conversation=conversation)
