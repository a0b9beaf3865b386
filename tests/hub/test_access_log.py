"""daphne's access log never carries a signed grant, token or ticket (issue 11, finding 12)."""

from __future__ import annotations

import io

from daphne.access import AccessLogGenerator

from hub.realtime.daphne_tuning import redact_url, tune_daphne


def test_grants_and_tokens_are_redacted_from_the_access_log() -> None:
    tune_daphne()
    stream = io.StringIO()
    log = AccessLogGenerator(stream)
    log(
        "http",
        "complete",
        {
            "client": "1.2.3.4:5",
            "method": "GET",
            "status": 206,
            "size": 10,
            "path": "/media/recordings/7f.mp4?grant=eyJhbGciOi.SIGNATURE&x=1",
        },
    )
    log("websocket", "connecting", {"client": "1.2.3.4:5", "path": "/ws/?ticket=t-secret"})
    text = stream.getvalue()
    assert "SIGNATURE" not in text and "t-secret" not in text, text
    assert "/media/recordings/7f.mp4?grant=[redacted]&x=1" in text
    assert redact_url("/a?token=abc&grant=def") == "/a?token=[redacted]&grant=[redacted]"
