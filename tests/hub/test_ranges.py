"""Numbers beyond what the database holds are bad input (422 validation_error),
never a 500 or 503 (issue 11, finding 9)."""

from __future__ import annotations

import pytest

from apps.im import services as im_services
from tests.conftest import make_patient, make_staff

pytestmark = pytest.mark.django_db
HUGE = "9" * 30
JUST_OVER = str(2**63)


@pytest.mark.parametrize("number", [HUGE, JUST_OVER])
def test_huge_ids_offsets_and_seqs_answer_422(number: str) -> None:
    doctor = make_staff("doctor", f"rangedoc{len(number)}")
    account = make_patient(f"139000{len(number):05d}", "范围")
    conv = im_services.conversation_for_pair(staff=doctor.user, patient=account.user)
    api = account.api()
    for path, params in [
        (f"/psych/assignments/{number}", {}),
        (f"/im/conversations/{number}/messages", {}),
        (f"/im/conversations/{conv.pk}/messages", {"after_seq": number}),
        (f"/im/conversations/{conv.pk}/messages", {"before_seq": number}),
        ("/psych/assignments", {"offset": number}),
        (f"/care/patients/{number}", {}),
    ]:
        client = doctor.api() if path.startswith("/care") else api
        r = client.get(path, **params)
        assert r.status_code == 422, (path, params, r.status_code, r.content[:200])
        assert r.json()["code"] == "validation_error", (path, r.json())


@pytest.mark.parametrize("path", ["/console/", "/h5/", "/console/index.html", "/api/v1/openapi.json"])
def test_every_page_carries_the_security_headers(path: str) -> None:
    """Issue 11, finding 5: the static apps were served before the header middleware."""
    from django.test import Client

    r = Client().get(path)
    assert r.status_code in (200, 302, 401), (path, r.status_code)
    assert "frame-ancestors 'none'" in r["Content-Security-Policy"], path
    assert r["X-Frame-Options"] == "DENY", path
    assert "camera=(self)" in r["Permissions-Policy"], path
