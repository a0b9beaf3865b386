from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _sync_scales(sender: Any, **kwargs: Any) -> None:
    # After migrate (and after a test flush) the published definitions are present.
    from .definitions import scales_sync

    scales_sync()


class PsychConfig(AppConfig):
    name = "apps.psych"
    label = "psych"
    verbose_name = "心理测评"

    def ready(self) -> None:
        post_migrate.connect(_sync_scales, sender=self, dispatch_uid="psych_sync_scales")
        from apps.accounts.demo import register_demo_seeder
        from apps.todos.registry import register

        from . import checks  # noqa: F401  (registers the settings check)
        from .demo import seed_psych_history
        from .todos import psych_todos

        register("psych", psych_todos)
        register_demo_seeder("psych", seed_psych_history)
