from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _sync(sender: Any, **kwargs: Any) -> None:
    # After migrate (and after a test flush) the vocabularies (and the demo catalogue) are present.
    from .catalogue import sync_after_migrate

    sync_after_migrate()


class PharmacyConfig(AppConfig):
    name = "apps.pharmacy"
    label = "pharmacy"
    verbose_name = "药学与处方"

    def ready(self) -> None:
        post_migrate.connect(_sync, sender=self, dispatch_uid="pharmacy_sync_catalogue")
        from apps.accounts.demo import register_demo_seeder
        from apps.todos.registry import register
        from hub.outside import register_adapter_setting
        from hub.realtime.topics import register_topic

        from . import checks  # noqa: F401  (registers the settings check)
        from .allergies import register_allergy_source, stored_allergies
        from .ca import configured_signer_paths
        from .demo import seed_pharmacy
        from .events import review_topic_authorize
        from .todos import pharmacy_todos

        register_adapter_setting("PHARMACY_CA_SIGNER", configured_signer_paths)
        register_allergy_source("pharmacy", stored_allergies)
        from .commerce_items import register as register_commerce_items

        register_commerce_items()  # prescriptions are paid through commerce
        from .delivery_source import register as register_delivery_source

        register_delivery_source()  # and shipped (or picked up) through delivery
        register("pharmacy", pharmacy_todos)
        register_topic("pharmacy_review", review_topic_authorize)
        register_demo_seeder("pharmacy", seed_pharmacy)
