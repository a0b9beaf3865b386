from __future__ import annotations

from hub.errors import ApiError


class ManifestInvalid(ApiError):
    def __init__(self) -> None:
        super().__init__("recording.manifest_invalid", "录像清单校验失败，文件可能被篡改", status=409)


class ReplayRefused(ApiError):
    def __init__(self) -> None:
        super().__init__("recording.replay_refused", "无权回放该录像", status=403)
