from django.apps import AppConfig


class ImConfig(AppConfig):
    name = "apps.im"
    label = "im"
    verbose_name = "即时通讯"

    def ready(self) -> None:
        from apps.accounts.demo import register_demo_seeder
        from apps.todos.registry import register

        from . import topics  # noqa: F401  (registers the conv topic kind)
        from .demo import seed_chat_history
        from .todos import im_todos

        register("im", im_todos)
        register_demo_seeder("im", seed_chat_history)
