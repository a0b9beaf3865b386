"""Adapters to parties outside the hospital (SMS, mini-program login, payment,
courier, CA, HIS/LIS...): loaded from a dotted-path setting, sandboxes refused in
production.

Every adapter class that is a sandbox says so with ``sandbox = True``. The
sandboxes sign, verify and fail like the real parties so the embedded default and
the tests run offline; production must never run on one (a sandbox SMS gateway
"sends" nothing, a sandbox login trusts codes it signed itself). Two guards:

- :func:`load` refuses a sandbox class when ``settings.PRODUCTION`` (at the moment
  the adapter is used: nothing is sent, nothing is recorded);
- :func:`configured_sandboxes` lists the configured sandboxes of every registered
  adapter setting, for the ``hub.E010`` system check and the ASGI startup guard
  (:func:`refuse_sandboxes_in_production`), so a production process does not
  start on one.

Apps register their adapter settings in ``AppConfig.ready()`` with
:func:`register_adapter_setting` (the hub core imports no app).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.core.checks import Error, register
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string


class SandboxInProduction(ImproperlyConfigured):
    """A sandbox adapter is configured for a production process."""


# label -> getter of the dotted paths configured for it
_settings: dict[str, Callable[[], Iterable[str]]] = {}


def register_adapter_setting(label: str, paths: Callable[[], Iterable[str]]) -> None:
    """``label`` (e.g. ``"MINIPROGRAM_ADAPTER"``) names the setting; ``paths()`` reads
    its current dotted paths (a setting may hold several, one per channel)."""
    _settings[label] = paths


def is_sandbox(cls: Any) -> bool:
    return bool(getattr(cls, "sandbox", False))


def load(path: str, *, label: str) -> Any:
    """The adapter class at ``path``; a sandbox in production raises :class:`SandboxInProduction`."""
    cls = import_string(path)
    if settings.PRODUCTION and is_sandbox(cls):
        raise SandboxInProduction(f"{label}: {path} is a sandbox; production needs the real adapter")
    return cls


def configured_sandboxes() -> list[tuple[str, str]]:
    """(setting, path) of every registered adapter setting that points at a sandbox."""
    found = []
    for label, paths in sorted(_settings.items()):
        for path in paths():
            if is_sandbox(import_string(path)):
                found.append((label, path))
    return found


def refuse_sandboxes_in_production() -> None:
    """Startup guard (``hub.asgi``): a production process never serves on a sandbox."""
    if settings.PRODUCTION:
        found = configured_sandboxes()
        if found:
            raise SandboxInProduction(
                "production refuses sandbox adapters: " + ", ".join(f"{label}={path}" for label, path in found)
            )


@register()
def sandbox_adapters_check(app_configs: Any, **kwargs: Any) -> list[Error]:
    if not settings.PRODUCTION:
        return []
    return [
        Error(f"{label} points at the sandbox {path}", hint="configure the real adapter", id="hub.E010")
        for label, path in configured_sandboxes()
    ]
