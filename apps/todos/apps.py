from django.apps import AppConfig


class TodosConfig(AppConfig):
    name = "apps.todos"
    label = "todos"
    verbose_name = "待办"
