from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "apps.notifications"
    label = "notifications"
    verbose_name = "通知"

    def ready(self) -> None:
        # services queues committed rows through tasks without importing them (tasks call services).
        from . import services, tasks

        services.enqueuer_register(tasks.enqueue)

        from hub.outside import register_adapter_setting

        from .adapters import configured_adapter_paths

        register_adapter_setting("NOTIFY_ADAPTERS", configured_adapter_paths)
