from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "apps.audit"
    label = "audit"
    verbose_name = "审计"

    def ready(self) -> None:
        from apps.todos.registry import register

        from .todos import audit_todos

        register("audit", audit_todos)
