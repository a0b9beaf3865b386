"""Error codes of recordings (REST and the replay view): each code's status and default
message, one error type."""

from __future__ import annotations

from enum import StrEnum

from hub.errors import ApiError, ErrorSpec


class RecordingCode(StrEnum):
    MANIFEST_INVALID = "recording.manifest_invalid"  # the files do not match the signed manifest
    REPLAY_REFUSED = "recording.replay_refused"
    TRANSITION_REFUSED = "recording.transition_refused"


ERRORS: dict[str, ErrorSpec] = {
    RecordingCode.MANIFEST_INVALID: ErrorSpec(409, "录像清单校验失败，文件可能被篡改"),
    RecordingCode.REPLAY_REFUSED: ErrorSpec(403, "无权回放该录像"),
    RecordingCode.TRANSITION_REFUSED: ErrorSpec(409, "当前状态不能执行该操作"),
}


class RecordingError(ApiError):
    codes = RecordingCode
    table = ERRORS


class ManifestInvalid(RecordingError):
    """``recording.manifest_invalid``, by a name callers catch."""

    def __init__(self) -> None:
        super().__init__(RecordingCode.MANIFEST_INVALID)


class ReplayRefused(RecordingError):
    def __init__(self) -> None:
        super().__init__(RecordingCode.REPLAY_REFUSED)
