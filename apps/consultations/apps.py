from __future__ import annotations

from django.apps import AppConfig


class ConsultationsConfig(AppConfig):
    name = "apps.consultations"
    label = "consultations"
    verbose_name = "在线复诊"

    def ready(self) -> None:
        # Registrations (commerce item kind, topics, to-dos, demo seeder, timed-session owner) are added
        # by the modules that own them (services, events, todos, demo).
        pass
