"""Fail a test on an unexpected logged exception (a traceback in the server's log)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest


class _Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        # An error response (django.request: 4xx/5xx the code chose) is not an exception.
        if record.exc_info or record.name not in ("django.request",):
            self.records.append(record)


@pytest.fixture(autouse=True)
def no_logged_exceptions() -> Iterator[None]:
    collector = _Collector()
    root = logging.getLogger()
    root.addHandler(collector)
    try:
        yield
    finally:
        root.removeHandler(collector)
    if collector.records:
        lines = [f"{r.name}: {r.getMessage()}" + (" (traceback)" if r.exc_info else "") for r in collector.records]
        pytest.fail("unexpected logged errors:\n" + "\n".join(lines), pytrace=False)
