"""The doctor's review signature (apps/psych/signing.py, ADR 0034): new signatures use the
derived ``psych-review/v1`` key; a review signed under the old derivation
(SHA-256("psych.review|" + AUDIT_HMAC_KEY)) still verifies, a tampered one does not.
And the scale card posted into the conversation carries its datetimes in UTC, as the API."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone

from apps.im.models import Message
from apps.psych.models import Result, ResultReview
from apps.psych.signing import review_signature, review_signature_valid
from hub.signing import Purpose, verify

from .test_flow import PHQ9_ANSWERS, assign

pytestmark = pytest.mark.django_db


def _old_signature(result: Result, note: str, signer_id: int, **changed: Any) -> str:
    """The code before ADR 0034 (git log -S "psych.review|" -- apps/psych), verbatim;
    ``changed`` overrides signed fields (a signature over other content)."""
    key = hashlib.sha256(b"psych.review|" + base64.b64decode(settings.AUDIT_HMAC_KEY)).digest()
    body = json.dumps(
        {
            "result": result.pk,
            "answers": result.answers,
            "raw": result.raw_score,
            "standard": result.standard_score,
            "band": result.band_code,
            "norm": result.norm,
            "note": note,
            "signer": signer_id,
        }
        | changed,
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()


NOTE = "较前好转，继续随访。"


def _submitted(care: Any) -> Result:
    item = assign(care)[0]
    care.account.api().post(f"/psych/assignments/{item['id']}/submit", {"answers": PHQ9_ANSWERS})
    return Result.objects.get(assignment_id=item["id"])


def _review(result: Result, signer_id: int, signature: str) -> ResultReview:
    """A review row as one signed before the change would be (the table is append-only)."""
    return ResultReview.objects.create(result=result, note=NOTE, signed_by_id=signer_id, signature=signature)


def _valid_in_report(persona: Any, result: Result) -> bool:
    report = persona.api().get(f"/psych/results/{result.pk}").json()
    return bool(report["review"]["signature_valid"])


def test_new_signatures_use_the_derived_key_not_the_old_one(care: Any) -> None:
    result = _submitted(care)
    signed = care.doctor.api().post(f"/psych/results/{result.pk}/sign", {"note": NOTE})
    assert signed.status_code == 201 and signed.json()["signature_valid"] is True
    review = ResultReview.objects.get(result=result)
    assert review.signature == review_signature(result, NOTE, care.doctor.user.pk)
    assert review.signature != _old_signature(result, NOTE, care.doctor.user.pk)
    payload = {
        "result": result.pk,
        "answers": result.answers,
        "raw": result.raw_score,
        "standard": result.standard_score,
        "band": result.band_code,
        "norm": result.norm,
        "note": NOTE,
        "signer": care.doctor.user.pk,
    }
    assert verify(payload, review.signature, Purpose.PSYCH_REVIEW)


def test_a_review_signed_the_old_way_still_verifies(care: Any) -> None:
    result = _submitted(care)
    _review(result, care.doctor.user.pk, _old_signature(result, NOTE, care.doctor.user.pk))
    assert _valid_in_report(care.doctor, result) is True
    assert _valid_in_report(care.account, result) is True
    assert review_signature_valid(result, NOTE, care.doctor.user.pk, _old_signature(result, NOTE, care.doctor.user.pk))


@pytest.mark.parametrize("how", ["note", "score", "signer", "flipped", "new_key_other_note"])
def test_a_tampered_review_does_not_verify(care: Any, how: str) -> None:
    result = _submitted(care)
    doctor = care.doctor.user.pk
    good = _old_signature(result, NOTE, doctor)
    signature = {
        "note": _old_signature(result, NOTE + "（改）", doctor),  # signed another note
        "score": _old_signature(result, NOTE, doctor, raw=result.raw_score + 1),  # signed another score
        "signer": _old_signature(result, NOTE, doctor + 1),  # signed by someone else
        "flipped": good[:-1] + ("0" if good[-1] != "0" else "1"),
        "new_key_other_note": review_signature(result, NOTE + "（改）", doctor),
    }[how]
    _review(result, doctor, signature)
    assert _valid_in_report(care.doctor, result) is False
    assert not review_signature_valid(result, NOTE, doctor, signature)


def test_scale_card_due_at_is_utc_like_the_api(care: Any, django_capture_on_commit_callbacks: Any) -> None:
    day = (timezone.localdate() + dt.timedelta(days=7)).isoformat()
    local = f"{day}T20:00:00+08:00"
    with django_capture_on_commit_callbacks(execute=True):
        r = care.doctor.api().post(
            "/psych/assignments", {"patient_id": care.child.pk, "scale_codes": ["PHQ-9"], "due_at": local}
        )
    assert r.status_code == 201, r.json()
    api_due = r.json()["items"][0]["due_at"]
    card = Message.objects.get(conversation=care.conversation, kind="card").body["data"]
    assert card["due_at"] == f"{day}T12:00:00+00:00"
    assert dt.datetime.fromisoformat(card["due_at"]) == dt.datetime.fromisoformat(api_due.replace("Z", "+00:00"))
    assert api_due.endswith(("Z", "+00:00")) and card["due_at"].endswith("+00:00")
    # And as a client reads it back from the conversation history.
    history = care.doctor.api().get(f"/im/conversations/{care.conversation.pk}/messages").json()
    cards = [m for m in history["items"] if m["kind"] == "card"]
    assert cards[-1]["body"]["data"]["due_at"] == f"{day}T12:00:00+00:00"
