"""Presence: ephemeral, a TTL key per connected user, never in the database.

With Redis the socket path writes it on the event loop (no thread hop);
readers elsewhere (tasks) use the synchronous client. Without Redis (the
embedded default) it lives in the process's cache."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.cache import cache

TTL_SECONDS = 70  # heartbeats come every 25 s: two may be lost before a user shows offline


def key(user_id: int) -> str:
    return f"presence:{user_id}"


async def touch(user_id: int) -> None:
    client = _async_client()
    if client is None:
        cache.set(key(user_id), 1, TTL_SECONDS)
    else:
        await client.set(key(user_id), 1, ex=TTL_SECONDS)


async def clear(user_id: int) -> None:
    client = _async_client()
    if client is None:
        cache.delete(key(user_id))
    else:
        await client.delete(key(user_id))


def touch_sync(user_id: int) -> None:
    if settings.REDIS_URL:
        _sync_client().set(key(user_id), 1, ex=TTL_SECONDS)
    else:
        cache.set(key(user_id), 1, TTL_SECONDS)


def online(user_ids: list[int]) -> set[int]:
    if not user_ids:
        return set()
    if settings.REDIS_URL:
        values = _sync_client().mget([key(u) for u in user_ids])
        return {u for u, v in zip(user_ids, values, strict=True) if v is not None}
    found = cache.get_many([key(u) for u in user_ids])
    return {int(k.split(":", 1)[1]) for k in found}


def _async_client() -> Any:
    if not settings.REDIS_URL:
        return None
    from .node import node

    return node().kv()


_sync: Any = None


def _sync_client() -> Any:
    global _sync
    if _sync is None:
        import redis

        _sync = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
    return _sync
