from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from apps.audit.services import audit_verify_chain


class Command(BaseCommand):
    help = "Verify the audit hash chain; exits non-zero and names the first bad row."

    def handle(self, *args: Any, **options: Any) -> None:
        result = audit_verify_chain()
        if not result.ok:
            raise CommandError(
                f"audit chain broken at row {result.first_bad_id} ({result.reason}); {result.checked} rows checked"
            )
        self.stdout.write(f"audit chain ok: {result.checked} rows")
