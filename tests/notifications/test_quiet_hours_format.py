"""Quiet hours are Beijing wall-clock times (issue 11: schemathesis found ``"00:00:20Z"``
accepted, its offset silently dropped, and the answer ``"00:00:20"`` off its declared
RFC 3339 ``time`` format). An offset is refused with nothing stored; the answer is
HH:MM:SS as the schema's pattern says."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client

from apps.notifications.models import QuietHours
from tests.conftest import Persona

pytestmark = pytest.mark.django_db


def put(persona: Persona, body: dict) -> object:
    return Client().put(
        "/api/v1/notifications/preferences",
        json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {persona.api().token}",
    )


@pytest.mark.parametrize("start", ["00:00:20Z", "22:00:00+08:00", "22:00+00:00"])
def test_a_time_with_an_offset_is_refused_and_nothing_is_stored(patient: Persona, start: str) -> None:
    r = put(patient, {"quiet_start": start, "quiet_end": "07:30:00"})
    assert r.status_code == 422, r.content
    body = r.json()
    assert body["code"] == "validation_error"
    assert body["detail"]["fields"][0]["field"] == "quiet_start"
    assert "北京时间" in body["detail"]["fields"][0]["problem"]
    assert not QuietHours.objects.filter(user=patient.user).exists()


def test_wall_clock_times_are_stored_and_answered_as_the_schema_says(patient: Persona) -> None:
    r = put(patient, {"quiet_start": "22:00", "quiet_end": "07:30:15.250"})
    assert r.status_code == 200, r.content
    assert (r.json()["quiet_start"], r.json()["quiet_end"]) == ("22:00:00", "07:30:15")
    quiet = QuietHours.objects.get(user=patient.user)
    assert (quiet.start.isoformat(), quiet.end.isoformat()) == ("22:00:00", "07:30:15")

    spec = Client().get("/api/v1/openapi.json").json()
    out = spec["components"]["schemas"]["PreferencesOut"]["properties"]["quiet_start"]["anyOf"][0]
    assert "format" not in out and out["type"] == "string"
    assert re.fullmatch(out["pattern"], r.json()["quiet_start"])
