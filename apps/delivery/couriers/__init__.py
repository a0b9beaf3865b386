"""Courier adapters by code, chosen by settings; sandboxes never in production.

``settings.DELIVERY_COURIERS`` maps a code to its adapter class and
``settings.DELIVERY_COURIER_OPTIONS`` to the keyword options it is built with
(base URL, partner ids, checkwords: from the environment). Another factory can
be registered for a code (a deployment's own adapter; tests register the real
SF adapter over a stand-in transport)."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from .base import Courier

_factories: dict[str, Callable[[], Courier]] = {}


def register_courier(code: str, factory: Callable[[], Courier]) -> None:
    _factories[code] = factory


def unregister_courier(code: str) -> None:
    _factories.pop(code, None)


def available() -> list[str]:
    return sorted(set(settings.DELIVERY_COURIERS) | set(_factories))


@cache
def _configured(code: str) -> Courier:
    cls = import_string(settings.DELIVERY_COURIERS[code])
    adapter: Courier = cls(**settings.DELIVERY_COURIER_OPTIONS.get(code, {}))
    return adapter


def courier(code: str) -> Courier:
    """The adapter of ``code``; ``LookupError`` when none is configured."""
    if code in _factories:
        adapter = _factories[code]()
    elif code in settings.DELIVERY_COURIERS:
        adapter = _configured(code)
    else:
        raise LookupError(code)
    if adapter.sandbox and settings.PRODUCTION:
        raise ImproperlyConfigured(
            f"沙箱快递 {code!r} 不能在生产环境使用：请在 DELIVERY_COURIERS 中只配置真实快递（顺丰、达达）"
        )
    return adapter
