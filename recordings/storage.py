"""Where recordings live: the storage root, each recording's file, and the key
that seals their manifests. The hub, the embedded node and ``run_media_node``
all take these from here."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from pathlib import Path

from django.conf import settings

from hub.crypto import key_bytes

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
    """Seals recording manifests; derived so it differs from every other key."""
    return hmac.new(key_bytes(settings.AUDIT_HMAC_KEY), b"recording-manifest/v1", hashlib.sha256).digest()
