from __future__ import annotations

from django.apps import AppConfig


class ConsultationsConfig(AppConfig):
    name = "apps.consultations"
    label = "consultations"
    verbose_name = "在线复诊"

    def ready(self) -> None:
        # The registrations of the booking side (commerce item kind, topics, to-dos, demo
        # seeder); the clinical side (apps/consultations/api_clinical.py ...) and the timed
        # session (timing.py) add theirs below at merge.
        from apps.accounts.demo import register_demo_seeder
        from apps.todos.registry import register as register_todos

        from . import events
        from .commerce_items import register as register_commerce_items
        from .demo import seed_consultations
        from .todos import consultation_todos

        register_commerce_items()  # visits are paid through commerce
        events.register()  # visit:<id>, consult_queue:<doctor>, consult_dept:<code>
        register_todos("consultations", consultation_todos)
        register_demo_seeder("consultations", seed_consultations)
        # The clinical side: the HIS adapter setting (sandbox refused in production).
        from .his import register as register_his

        register_his()
        # The timed session: the visit ends with it; its one extension is billed.
        from apps.timed.registry import register_owner

        from .services import visit_session_ended
        from .timing import OWNER, bill_extension, register_extension_item

        register_owner(OWNER, on_end=visit_session_ended, on_extend=bill_extension)
        register_extension_item()
