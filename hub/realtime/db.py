"""Database work from the socket path, on a dedicated, sized thread pool.

Channels' ``database_sync_to_async`` runs everything on one shared thread per
process (50 concurrent 10 ms queries took 513 ms here); the hub instead keeps
a pool of ``HUB_DB_THREADS`` threads, each with its own persistent connection.

These are the only long-lived connections of a daphne process: HTTP requests
close theirs when they finish (``CONN_MAX_AGE`` 0, docs/adr/0007). A pool
thread never exits and nothing here calls ``close_old_connections``, so each
keeps one connection regardless of ``CONN_MAX_AGE``; the process holds at most
``HUB_DB_THREADS`` of them, and a socket operation never pays a reconnect.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from django.conf import settings
from django.db import DatabaseError, connection

T = TypeVar("T")

_executor: ThreadPoolExecutor | None = None


def executor() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=settings.HUB_DB_THREADS, thread_name_prefix="hub-db")
    return _executor


def _call(fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
    try:
        return fn(*args, **kwargs)
    except DatabaseError:
        # A broken connection (database restarted) must not poison this thread.
        if connection.connection is not None and not connection.is_usable():
            connection.close()
        raise
    finally:
        # Never leave a transaction open on a pooled thread.
        if connection.in_atomic_block:
            connection.close()


async def run_db(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    loop = asyncio.get_running_loop()
    # Carry the caller's context (request meta for the audit log) into the thread.
    ctx = contextvars.copy_context()
    return await loop.run_in_executor(executor(), ctx.run, functools.partial(_call, fn, args, kwargs))
