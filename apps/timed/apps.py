from __future__ import annotations

from django.apps import AppConfig


class TimedConfig(AppConfig):
    name = "apps.timed"
    label = "timed"
    verbose_name = "限时会话"
