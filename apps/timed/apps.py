from __future__ import annotations

from django.apps import AppConfig


class TimedConfig(AppConfig):
    name = "apps.timed"
    label = "timed"
    verbose_name = "限时会话"

    def ready(self) -> None:
        from . import services, tasks

        services.set_deadline_scheduler(tasks.schedule_deadline)
