"""Recording lifecycle, replay grants, legal hold and retention."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import User
from apps.accounts.roles import CLINICAL_ROLES
from apps.audit.services import audit_record
from apps.core.lifecycle import AuditEntry, transition
from hub.media.grants import manifest_key, replay_grant
from media_engine.recording import recover_manifest, verify_manifest

from .errors import ManifestInvalid, ReplayRefused
from .models import RECORDING_TRANSITIONS, Recording

log = logging.getLogger(__name__)

MIN_RETENTION_DAYS = 3 * 365 + 1  # audio/video of care: at least 3 years


def recordings_root() -> Path:
    return Path(settings.RECORDINGS_ROOT)


def recording_file(recording: Recording) -> Path:
    root = recordings_root().resolve()
    path = (root / recording.storage_path).resolve()
    if root not in path.parents:
        raise ValueError("recording path escapes the storage root")
    return path


def retention_days() -> int:
    return max(int(settings.RECORDING_RETENTION_DAYS), MIN_RETENTION_DAYS)


def recording_start(
    *, room_id: str, storage_path: str, participants: Iterable[User], started_at: dt.datetime | None = None
) -> Recording:
    """Register a recording the media node is starting to write."""
    started = started_at or timezone.now()
    recording = Recording.objects.create(
        room_id=room_id,
        storage_path=storage_path,
        started_at=started,
        retain_until=(started + dt.timedelta(days=retention_days())).date(),
    )
    recording.participants.set(list(participants))
    return recording


def recording_finish(
    *, recording: Recording, manifest: dict[str, Any], reason: str = "", audit: AuditEntry | None = None
) -> Recording:
    """Accept the sealed manifest of a finished (or recovered) file; refuse a tampered one.

    Sealing is the recording's transition out of ``recording`` (``finish`` or,
    for a manifest rebuilt from a cut file, ``recover``): a recording already
    sealed raises :class:`~apps.core.lifecycle.TransitionRefused` and keeps
    its first manifest."""
    path = recording_file(recording)
    if not path.exists() or not verify_manifest(manifest, manifest_key(), path):
        audit_record(
            action="recording.manifest_invalid",
            object_type="recording",
            object_id=recording.public_id,
            result="failed",
        )
        raise ManifestInvalid()  # the refusal stays audited: no transaction to roll it back
    recording.duration_seconds = float(manifest.get("duration_seconds") or 0)
    recording.size = int(manifest["size"])
    recording.sha256 = str(manifest["sha256"])
    recording.manifest = manifest
    recording.ended_at = timezone.now()
    return transition(
        recording,
        "recover" if manifest.get("recovered") else "finish",
        table=RECORDING_TRANSITIONS,
        actor=None,
        code="recording.transition_refused",
        reason=reason,
        fields=["duration_seconds", "size", "sha256", "manifest", "ended_at"],
        audit=audit,
    )


def recording_recover(*, recording: Recording) -> Recording:
    """The recorder died (e.g. SIGKILL of the media node): seal what the cut file holds."""
    manifest = recover_manifest(recording_file(recording), manifest_key(), room=recording.room_id)
    return recording_finish(recording=recording, manifest=manifest)


def may_replay(*, recording: Recording, user: User) -> bool:
    # Clinical staff who took part in the session; nobody else (patients get
    # copies through a data-subject request, not the replay URL).
    return user.role in CLINICAL_ROLES and recording.participants.filter(id=user.id).exists()


def recording_replay(*, recording: Recording, user: User) -> dict[str, Any]:
    """Issue an expiring signed replay URL; every replay (and refusal) is audited."""
    if recording.status == Recording.Status.RECORDING or not may_replay(recording=recording, user=user):
        audit_record(
            action="recording.replay",
            actor=user,
            object_type="recording",
            object_id=recording.public_id,
            result="denied",
        )
        raise ReplayRefused()  # outside any transaction: the denial record stays
    token, exp = replay_grant(recording_public_id=str(recording.public_id), user_id=user.id)
    audit_record(
        action="recording.replay",
        actor=user,
        object_type="recording",
        object_id=recording.public_id,
        detail={"room": recording.room_id, "expires": exp},
    )
    return {
        "url": f"/media/recordings/{recording.public_id}.mp4?grant={token}",
        "expires_at": dt.datetime.fromtimestamp(exp, tz=dt.UTC),
        "integrity_ok": verify_manifest(recording.manifest, manifest_key()),
    }


@transaction.atomic
def recording_legal_hold(*, recording: Recording, actor: User, hold: bool, reason: str) -> Recording:
    """Place or lift a legal hold (suspends deletion at the end of retention)."""
    recording.legal_hold = hold
    recording.legal_hold_reason = reason[:200] if hold else ""
    recording.save(update_fields=["legal_hold", "legal_hold_reason"])
    audit_record(
        action="recording.legal_hold" if hold else "recording.legal_hold_lift",
        actor=actor,
        object_type="recording",
        object_id=recording.public_id,
        detail={"reason": reason[:200]},
    )
    return recording


def recordings_purge_expired(*, today: dt.date | None = None) -> int:
    """Delete recordings past retention and not on hold (files first, then rows)."""
    day = today or timezone.localdate()
    purged = 0
    for recording in Recording.objects.filter(retain_until__lt=day, legal_hold=False):
        with transaction.atomic():
            locked = Recording.objects.select_for_update().get(id=recording.id)
            if locked.legal_hold:
                continue
            path = recording_file(locked)
            path.unlink(missing_ok=True)
            path.with_suffix(".manifest.json").unlink(missing_ok=True)
            audit_record(
                action="recording.purge",
                object_type="recording",
                object_id=locked.public_id,
                detail={"room": locked.room_id, "retain_until": locked.retain_until.isoformat()},
            )
            locked.delete()
            purged += 1
    return purged
