from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "apps.accounts"
    label = "accounts"
    verbose_name = "账号"

    def ready(self) -> None:
        from .identity import register

        register()  # the hub core's token rules (hub.identity)

        from django.conf import settings

        from hub.outside import register_adapter_setting

        register_adapter_setting("MINIPROGRAM_ADAPTER", lambda: [settings.MINIPROGRAM_ADAPTER])
