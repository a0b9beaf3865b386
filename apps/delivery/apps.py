from __future__ import annotations

from django.apps import AppConfig


class DeliveryConfig(AppConfig):
    name = "apps.delivery"
    label = "delivery"
    verbose_name = "配送"

    def ready(self) -> None:
        from django.conf import settings

        from apps.accounts.demo import register_demo_seeder
        from apps.todos.registry import register
        from hub.outside import register_adapter_setting

        from . import services, tasks
        from .demo import register_demo_source, seed_delivery_demo
        from .todos import delivery_todos

        services.sandbox_stepper_register(tasks.schedule_sandbox_step)
        # Production refuses sandbox couriers (hub.outside: when used, hub.E010, ASGI startup).
        register_adapter_setting("DELIVERY_COURIERS", lambda: list(settings.DELIVERY_COURIERS.values()))
        register_adapter_setting("DELIVERY_PRIVACY_NUMBERS", lambda: [settings.DELIVERY_PRIVACY_NUMBERS])
        if not settings.PRODUCTION:
            register_demo_source()
            register_demo_seeder("delivery", seed_delivery_demo)
        register("delivery", delivery_todos)
