"""A bench-only item kind, registered through commerce's registry as a domain app does.

``on_paid`` counts its calls per order item in Redis (``HINCRBY``), so the bench can
check that the owning app was told exactly once per item, in whichever process ran it
(the huey consumer)."""

from __future__ import annotations

import os
from typing import Any

from django.apps import AppConfig
from django.conf import settings

KIND = "bench_item"
TITLE = "压测商品"
PRICE_FEN = 2990
PAID_KEY = "bench:commerce:on_paid"

_client: Any = None


def _redis() -> Any:
    global _client
    if _client is None:
        import redis

        _client = redis.Redis.from_url(settings.REDIS_URL)
    return _client


def on_paid(item: Any) -> bool:
    _redis().hincrby(PAID_KEY, str(item.item_id), 1)
    return True  # delivered at once: the order completes


class BenchCommerceConfig(AppConfig):
    name = "bench.commerce"
    label = "bench_commerce"
    verbose_name = TITLE

    def ready(self) -> None:
        from apps.commerce.registry import Quote, register_item_kind

        register_item_kind(
            KIND,
            title=TITLE,
            quote=lambda patient, ref, quantity: Quote(title=TITLE, unit_price_fen=PRICE_FEN),
            on_paid=on_paid,
        )
        if os.environ.get("BENCH_UNCHAINED_AUDIT") == "1":  # an experiment, never the product
            from bench.commerce.unchained_audit import install

            install()
