from django.apps import AppConfig


class ImConfig(AppConfig):
    name = "apps.im"
    label = "im"
    verbose_name = "即时通讯"

    def ready(self) -> None:
        from apps.todos.registry import register

        from . import topics  # noqa: F401  (registers the conv topic kind)
        from .todos import im_todos

        register("im", im_todos)
