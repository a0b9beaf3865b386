"""Where recordings live: the storage root, each recording's file, and the key
that seals their manifests. The hub, the embedded node and ``run_media_node``
all take these from here."""

from __future__ import annotations

import uuid
from pathlib import Path

from django.conf import settings

from hub.signing import Purpose, derive_key

from .models import Recording


def recordings_root() -> Path:
    return Path(settings.RECORDINGS_ROOT)


def storage_path(*, room_id: str, public_id: uuid.UUID) -> str:
    """A new recording's file, relative to :func:`recordings_root`."""
    return f"{room_id}/{public_id}.mp4"


def recording_file(recording: Recording) -> Path:
    root = recordings_root().resolve()
    path = (root / recording.storage_path).resolve()
    if root not in path.parents:
        raise ValueError("recording path escapes the storage root")
    return path


def manifest_key() -> bytes:
    """Seals recording manifests: the ``recording-manifest/v1`` purpose's derived key
    (the same bytes as before ADR 0034, so manifests sealed earlier still verify)."""
    return derive_key(Purpose.RECORDING_MANIFEST)
