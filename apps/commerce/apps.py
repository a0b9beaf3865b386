from __future__ import annotations

from django.apps import AppConfig
from django.conf import settings


class CommerceConfig(AppConfig):
    name = "apps.commerce"
    label = "commerce"
    verbose_name = "订单与支付"

    def ready(self) -> None:
        from apps.accounts.demo import register_demo_seeder
        from apps.todos.registry import register

        # services queues committed work through tasks without importing them (tasks call services).
        from . import services, tasks
        from .demo import seed_commerce
        from .todos import commerce_todos

        services.enqueuer_register(tasks.enqueue)
        if getattr(settings, "PAYMENTS_SANDBOX", False):
            # The demo orders' kinds, in every process that may fulfil or refund them
            # (never in production: the sandbox is off there).
            from .demo import register_demo_kinds

            register_demo_kinds()
        register("commerce", commerce_todos)
        register_demo_seeder("commerce", seed_commerce)
