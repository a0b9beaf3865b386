"""Group commit for the socket path.

Concurrent requests queue up while the database is busy and go in together:
one transaction (one WAL flush) for many sends. At low load a batch is a
single request, so nothing waits for a timer; under load batches grow by
themselves. Results come back per request, in order."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from .db import run_db
from .node import node

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


class GroupCommit(Generic[T, R]):
    def __init__(self, run_batch: Callable[[list[T]], list[R]], *, max_batch: int = 64, max_inflight: int = 4) -> None:
        self.run_batch = run_batch
        self.max_batch = max_batch
        self.max_inflight = max_inflight
        self.queue: list[tuple[T, asyncio.Future[R]]] = []
        self.inflight = 0

    async def submit(self, item: T) -> R:
        fut: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self.queue.append((item, fut))
        self._kick()
        return await fut

    def _kick(self) -> None:
        while self.queue and self.inflight < self.max_inflight:
            batch = self.queue[: self.max_batch]
            del self.queue[: self.max_batch]
            self.inflight += 1
            node().spawn(self._run(batch))

    async def _run(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            try:
                results: list[Any] = await run_db(self.run_batch, [item for item, _ in batch])
            except Exception as exc:
                if len(batch) == 1:
                    raise
                # One item's failure must not fail the others: each again, alone.
                log.warning("batch of %d failed (%r); retried one at a time", len(batch), exc)
                for one in batch:
                    await self._run_one(one)
            else:
                for (_, fut), result in zip(batch, results, strict=True):
                    if not fut.done():
                        fut.set_result(result)
        except Exception as exc:
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(exc)
        finally:
            self.inflight -= 1
            self._kick()

    async def _run_one(self, entry: tuple[T, asyncio.Future[R]]) -> None:
        item, fut = entry
        try:
            (result,) = await run_db(self.run_batch, [item])
        except Exception as exc:
            if not fut.done():
                fut.set_exception(exc)
        else:
            if not fut.done():
                fut.set_result(result)
