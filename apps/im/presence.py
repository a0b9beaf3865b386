"""Presence: ephemeral, in the cache (Redis in production) with a TTL, never
in the database. A socket refreshes it on auth and on every heartbeat."""

from __future__ import annotations

from django.core.cache import cache

TTL_SECONDS = 70  # heartbeats come every 25 s: two may be lost before a user shows offline


def _key(user_id: int) -> str:
    return f"presence:{user_id}"


def presence_touch(user_id: int) -> None:
    cache.set(_key(user_id), 1, TTL_SECONDS)


def presence_clear(user_id: int) -> None:
    cache.delete(_key(user_id))


def online_users(user_ids: list[int]) -> set[int]:
    found = cache.get_many([_key(u) for u in user_ids])
    return {int(k.split(":", 1)[1]) for k in found}
