"""Group commit: one item that makes its batch raise fails alone (issue 11 finding 2)."""

from __future__ import annotations

import asyncio

import pytest

from hub.realtime.batching import GroupCommit

pytestmark = [pytest.mark.django_db, pytest.mark.asyncio]


async def test_a_raising_item_fails_alone() -> None:
    calls: list[list[object]] = []

    def run_batch(items: list[object]) -> list[str]:
        calls.append(items)
        if any(not isinstance(i, int) for i in items):
            raise TypeError("unhashable")
        return [f"ok {i}" for i in items]

    batches = GroupCommit(run_batch, max_batch=64, max_inflight=1)
    items: list[object] = [1, 2, [], 3, {}, 4]
    results = await asyncio.gather(*(batches.submit(i) for i in items), return_exceptions=True)
    assert results[0] == "ok 1" and results[1] == "ok 2" and results[3] == "ok 3" and results[5] == "ok 4"
    assert isinstance(results[2], TypeError) and isinstance(results[4], TypeError)
    assert any(len(c) > 1 for c in calls)  # they did share a batch
