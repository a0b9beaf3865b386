"""Any API request can meet 422 ``validation_error`` before its route does (a number beyond
bigint anywhere in the path or query, a NUL character), so every operation declares it
(issue 11: schemathesis got an undocumented 422 from ``GET /psych/duty?x=<23 digits>``)."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.conftest import Persona

pytestmark = pytest.mark.django_db


def test_a_route_without_numbers_still_declares_the_422_it_answers(doctor: Persona) -> None:
    r = Client().get("/api/v1/psych/duty?x=-7397023247525053726720", HTTP_AUTHORIZATION=f"Bearer {doctor.api().token}")
    assert r.status_code == 422 and r.json()["code"] == "validation_error", r.content
    spec = Client().get("/api/v1/openapi.json").json()
    missing = [
        f"{method.upper()} {path}"
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
        if "validation_error"
        not in (
            (op["responses"].get("422") or {}).get("content", {}).get("application/json", {}).get("schema", {})
        ).get("x-error-codes", [])
    ]
    assert missing == []
