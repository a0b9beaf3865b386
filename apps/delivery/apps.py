from __future__ import annotations

from django.apps import AppConfig


class DeliveryConfig(AppConfig):
    name = "apps.delivery"
    label = "delivery"
    verbose_name = "配送"

    def ready(self) -> None:
        from django.conf import settings
        from django.core.exceptions import ImproperlyConfigured
        from django.utils.module_loading import import_string

        from apps.accounts.demo import register_demo_seeder
        from apps.todos.registry import register

        from .demo import register_demo_source, seed_delivery_demo
        from .todos import delivery_todos

        if settings.PRODUCTION:
            # Fail at start, not at the first booking: production runs real couriers only.
            for code, path in settings.DELIVERY_COURIERS.items():
                if getattr(import_string(path), "sandbox", False):
                    raise ImproperlyConfigured(f"沙箱快递 {code!r} 不能在生产环境使用（DELIVERY_COURIERS）")
        else:
            register_demo_source()
            register_demo_seeder("delivery", seed_delivery_demo)
        register("delivery", delivery_todos)
