"""A request body that is not JSON is bad input like any other: 422 ``validation_error`` with a
Chinese message, never ninja's English ``http_400`` (issue 11: schemathesis found the 400
undocumented on every route with a body)."""

from __future__ import annotations

import pytest
from django.test import Client

from apps.accounts.models import ConsentRecord
from apps.audit.models import AuditEvent
from tests.conftest import Persona

pytestmark = pytest.mark.django_db

BAD_BODIES = [b"\x00", b"\xd7\x8b\xc1F ", b"{", b'{"purpose": ', b"not json"]


@pytest.mark.parametrize("body", BAD_BODIES, ids=["nul", "bytes", "brace", "cut", "text"])
def test_an_unparsable_body_is_422_validation_error_and_writes_nothing(patient: Persona, body: bytes) -> None:
    token = patient.api().token
    audit_before = AuditEvent.objects.count()
    r = Client().post(
        "/api/v1/accounts/consents", body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert r.status_code == 422, r.content
    assert r.json() == {
        "code": "validation_error",
        "message": "请求内容不是有效的 JSON",
        "detail": {"fields": [{"field": "", "problem": "invalid_json"}]},
    }
    assert not ConsentRecord.objects.filter(user=patient.user).exists()
    assert AuditEvent.objects.count() == audit_before


def test_an_unparsable_login_body_is_422_too(api) -> None:
    r = Client().post("/api/v1/auth/staff/login", b"\x00", content_type="application/json")
    assert r.status_code == 422 and r.json()["code"] == "validation_error", r.content
    # Declared: every route with a body lists validation_error under 422.
    spec = Client().get("/api/v1/openapi.json").json()
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if "requestBody" in op:
                assert (
                    "validation_error"
                    in op["responses"]["422"]["content"]["application/json"]["schema"]["x-error-codes"]
                ), f"{method} {path}"
