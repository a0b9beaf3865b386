"""A registered test owner whose hooks record their calls, and the process clock reset per test."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from apps.timed import registry, services
from tests.support.logcheck import no_logged_exceptions  # noqa: F401  (autouse)

KIND = "test_owner"


@dataclass
class Calls:
    ended: list[tuple[int, str]] = field(default_factory=list)
    extended: list[tuple[int, Any]] = field(default_factory=list)
    fail_extend: bool = False


@pytest.fixture
def owner() -> Iterator[Calls]:
    calls = Calls()

    def on_end(session: Any, reason: str) -> None:
        calls.ended.append((session.pk, reason))

    def on_extend(session: Any, actor: Any) -> None:
        if calls.fail_extend:
            raise RuntimeError("billing refused")
        calls.extended.append((session.pk, getattr(actor, "pk", None)))

    registry.register_owner(KIND, on_end=on_end, on_extend=on_extend)
    yield calls
    registry.unregister_owner(KIND)


@pytest.fixture(autouse=True)
def _no_process_clock() -> Iterator[None]:
    yield
    from apps.timed import clock

    if clock._clock is not None:
        clock._clock.uninstall()
    services.set_media_closer(None)
