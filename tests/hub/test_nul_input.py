"""A NUL character in a string the database would store or compare is bad input: 422
``validation_error`` in Chinese, nothing written, never the 500 psycopg2's ValueError gave
(issue 11: schemathesis sent ``\\u0000`` in a login name and ``%00`` in search queries)."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from apps.accounts.models import LoginThrottle
from apps.audit.models import AuditEvent
from tests.conftest import Persona

pytestmark = pytest.mark.django_db

NUL_ANSWER = {
    "code": "validation_error",
    "message": "内容不能包含空字符（NUL）",
    "detail": {"fields": [{"field": "", "problem": "nul_character"}]},
}


def test_a_login_name_with_nul_is_422_and_counts_no_try() -> None:
    audit_before = AuditEvent.objects.count()
    body = json.dumps({"username": "doc\u0000", "password": "Ward-7-Night!", "otp": ""})
    r = Client().post("/api/v1/auth/staff/login", body, content_type="application/json")
    assert r.status_code == 422, r.content
    assert r.json() == NUL_ANSWER
    assert not LoginThrottle.objects.exists()
    assert AuditEvent.objects.count() == audit_before


@pytest.mark.parametrize("path", ["/api/v1/psych/patients?q=%00ab", "/api/v1/recordings/?room_id=conv-%001"])
def test_a_query_with_nul_is_422(doctor: Persona, path: str) -> None:
    r = Client().get(path, HTTP_AUTHORIZATION=f"Bearer {doctor.api().token}")
    assert r.status_code == 422, r.content
    assert r.json() == NUL_ANSWER
