"""hub.signing: one canonical JSON, per-purpose derived keys, and the five
signers on top of it (audit chain, psych review, hub and media grants,
recording manifests). ADR 0034."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
from types import SimpleNamespace
from typing import Any, cast

import pytest
from django.test import override_settings

from apps.audit import services as audit_services
from apps.audit.services import audit_record, audit_verify_chain
from apps.media.grants import room_grant
from apps.media.grants import verify as hub_verify_grant
from apps.psych.services import review_signature
from hub import signing
from hub.crypto import grant_key
from hub.signing import Purpose, canonical_json, derive_key, seal, verify
from media_engine import grants as engine_grants
from media_engine.grants import GrantError, sign_grant, verify_grant
from media_engine.recording import seal_manifest, verify_manifest
from recordings.storage import manifest_key

PURPOSES = list(Purpose)
PAIRS = [(a, b) for a, b in itertools.product(PURPOSES, PURPOSES) if a != b]
PAYLOAD: dict[str, Any] = {"b": [1, 2], "a": "张三", "n": None, "nested": {"z": 1, "y": True}}
SAME_ROOT = base64.b64encode(b"r" * 32).decode()


# --- canonical JSON ------------------------------------------------------------------------


def test_canonical_json_is_sorted_compact_utf8() -> None:
    assert canonical_json(PAYLOAD) == '{"a":"张三","b":[1,2],"n":null,"nested":{"y":true,"z":1}}'.encode()


def test_the_engine_copy_gives_the_same_bytes() -> None:
    assert engine_grants.canonical_json(PAYLOAD) == canonical_json(PAYLOAD)
    import media_engine.recording

    assert media_engine.recording.canonical_json is engine_grants.canonical_json


# --- derived keys --------------------------------------------------------------------------


def test_every_purpose_has_its_own_key() -> None:
    keys = {purpose: derive_key(purpose) for purpose in PURPOSES}
    assert len(set(keys.values())) == len(PURPOSES)
    assert all(len(key) == 32 for key in keys.values())
    # No derived key is a root itself.
    from django.conf import settings

    roots = {signing.key_bytes(settings.AUDIT_HMAC_KEY), signing.key_bytes(settings.GRANT_SIGNING_KEY)}
    assert not roots & set(keys.values())


@override_settings(AUDIT_HMAC_KEY=SAME_ROOT, GRANT_SIGNING_KEY=SAME_ROOT)
def test_purposes_differ_even_under_one_root() -> None:
    assert len({derive_key(purpose) for purpose in PURPOSES}) == len(PURPOSES)


def test_the_signers_take_their_keys_from_the_derivation() -> None:
    assert grant_key() == derive_key(Purpose.GRANT)
    assert manifest_key() == derive_key(Purpose.RECORDING_MANIFEST)


def test_the_manifest_key_is_unchanged_so_old_manifests_verify() -> None:
    from django.conf import settings

    before = hmac.new(signing.key_bytes(settings.AUDIT_HMAC_KEY), b"recording-manifest/v1", hashlib.sha256).digest()
    assert manifest_key() == before


# --- a signature for one purpose fails for every other ------------------------------------------


def test_seal_verifies_for_its_own_purpose() -> None:
    for purpose in PURPOSES:
        assert verify(PAYLOAD, seal(PAYLOAD, purpose), purpose)
        assert not verify({**PAYLOAD, "a": "李四"}, seal(PAYLOAD, purpose), purpose)
        assert not verify(PAYLOAD, seal(PAYLOAD, purpose, prefix="x|"), purpose)


@pytest.mark.parametrize(("sealed_for", "checked_as"), PAIRS, ids=lambda p: str(p))
def test_a_seal_fails_for_every_other_purpose(sealed_for: Purpose, checked_as: Purpose) -> None:
    assert not verify(PAYLOAD, seal(PAYLOAD, sealed_for), checked_as)
    with override_settings(AUDIT_HMAC_KEY=SAME_ROOT, GRANT_SIGNING_KEY=SAME_ROOT):
        assert not verify(PAYLOAD, seal(PAYLOAD, sealed_for), checked_as)


@pytest.mark.parametrize(("sealed_for", "checked_as"), PAIRS, ids=lambda p: str(p))
def test_a_grant_token_fails_under_every_other_purpose_key(sealed_for: Purpose, checked_as: Purpose) -> None:
    token = sign_grant({"purpose": "room", "room": "r1"}, key=derive_key(sealed_for), ttl_seconds=60)
    assert verify_grant(token, key=derive_key(sealed_for), purpose="room")["room"] == "r1"
    with pytest.raises(GrantError) as refused:
        verify_grant(token, key=derive_key(checked_as), purpose="room")
    assert refused.value.code == "grant.invalid"


@pytest.mark.parametrize(("sealed_for", "checked_as"), PAIRS, ids=lambda p: str(p))
def test_a_manifest_fails_under_every_other_purpose_key(sealed_for: Purpose, checked_as: Purpose) -> None:
    manifest = seal_manifest({"version": 1, "room": "r1", "size": 10}, derive_key(sealed_for))
    assert verify_manifest(manifest, derive_key(sealed_for))
    assert not verify_manifest(manifest, derive_key(checked_as))


def test_manifest_format_is_hex_hmac_over_the_canonical_body() -> None:
    body = {"version": 1, "room": "房间", "size": 10}
    sealed = seal_manifest(body, manifest_key())
    assert sealed["hmac"] == hmac.new(manifest_key(), canonical_json(body), hashlib.sha256).hexdigest()
    assert sealed["hmac"] == seal(body, Purpose.RECORDING_MANIFEST)


# --- the hub's grants ------------------------------------------------------------------------


def test_a_room_grant_verifies_on_the_hub_and_on_the_node() -> None:
    token = room_grant(room_id="conv-1", peer_id="u1", role="doctor", publish=True, subscribe=True, sid=7)
    assert hub_verify_grant(token, purpose="room")["peer"] == "u1"
    # The node gets the derived key from the hub and nothing else.
    assert verify_grant(token, key=derive_key(Purpose.GRANT), purpose="room")["room"] == "conv-1"
    for other in set(PURPOSES) - {Purpose.GRANT}:
        with pytest.raises(GrantError):
            verify_grant(token, key=derive_key(other), purpose="room")


def test_a_grant_signed_under_the_bare_root_is_refused() -> None:
    from django.conf import settings

    root = signing.key_bytes(settings.GRANT_SIGNING_KEY)
    token = sign_grant({"purpose": "room", "room": "r1", "peer": "u1"}, key=root, ttl_seconds=60)
    with pytest.raises(GrantError):
        hub_verify_grant(token, purpose="room")


def test_grant_tokens_keep_their_format() -> None:
    token = sign_grant({"purpose": "replay", "rec": "房间"}, key=b"k" * 32, ttl_seconds=60, now=1000)
    raw_b64, mac_b64 = token.split(".")
    raw = base64.urlsafe_b64decode(raw_b64 + "=" * (-len(raw_b64) % 4))
    assert json.loads(raw) == {"purpose": "replay", "rec": "房间", "exp": 1060}
    assert raw == canonical_json({"purpose": "replay", "rec": "房间", "exp": 1060})
    mac = base64.urlsafe_b64decode(mac_b64 + "=" * (-len(mac_b64) % 4))
    assert mac == hmac.new(b"k" * 32, raw, hashlib.sha256).digest()


# --- psych review signature --------------------------------------------------------------------


def _result() -> Any:
    return cast(
        Any,
        SimpleNamespace(pk=7, answers={"q1": 2}, raw_score=12, standard_score=15, band_code="mild", norm="china"),
    )


def test_the_review_signature_is_sealed_for_psych_review_only() -> None:
    signature = review_signature(_result(), "建议复诊", 3)
    body = {
        "result": 7,
        "answers": {"q1": 2},
        "raw": 12,
        "standard": 15,
        "band": "mild",
        "norm": "china",
        "note": "建议复诊",
        "signer": 3,
    }
    assert verify(body, signature, Purpose.PSYCH_REVIEW)
    assert len(signature) == 64
    for other in set(PURPOSES) - {Purpose.PSYCH_REVIEW}:
        assert not verify(body, signature, other)
    assert review_signature(_result(), "建议复诊!", 3) != signature


# --- audit chain ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_audit_row_is_sealed_for_the_audit_chain_only() -> None:
    event = audit_record(action="test.signing", actor_username="u", detail={"名": "值"})
    fields = audit_services._fields(event)
    prefix = f"{event.prev_hash}|"
    assert verify(fields, event.hash, Purpose.AUDIT_CHAIN, prefix=prefix)
    for other in set(PURPOSES) - {Purpose.AUDIT_CHAIN}:
        assert not verify(fields, event.hash, other, prefix=prefix)
    assert audit_verify_chain().ok


@pytest.mark.django_db
def test_rows_chained_under_the_root_before_adr_0034_still_verify(monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as legacy:
        legacy.setattr(audit_services, "_digest", audit_services._legacy_digest)
        for i in range(3):
            audit_record(action="test.legacy", actor_username=f"u{i}")
    for i in range(2):
        audit_record(action="test.derived", actor_username=f"u{i}")
    result = audit_verify_chain()
    assert result.ok and result.checked == 5


@pytest.mark.django_db
def test_a_root_keyed_row_after_a_derived_one_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    audit_record(action="test.derived", actor_username="u0")
    with monkeypatch.context() as legacy:
        legacy.setattr(audit_services, "_digest", audit_services._legacy_digest)
        late = audit_record(action="test.legacy", actor_username="u1")
    audit_record(action="test.derived", actor_username="u2")
    result = audit_verify_chain()
    assert not result.ok and result.first_bad_id == late.id and result.reason == "hash"


@pytest.mark.django_db
def test_a_room_grant_from_the_api_verifies_with_the_nodes_key_only() -> None:
    from tests.factories import make_pair

    pair = make_pair()
    room = f"conv-{pair.conversation.pk}"
    response = pair.patient.api().post(f"/media/rooms/{room}/grant")
    assert response.status_code == 200, response.content
    token = response.json()["token"]
    assert verify_grant(token, key=grant_key(), purpose="room")["room"] == room
    for other in set(PURPOSES) - {Purpose.GRANT}:
        with pytest.raises(GrantError):
            verify_grant(token, key=derive_key(other), purpose="room")
