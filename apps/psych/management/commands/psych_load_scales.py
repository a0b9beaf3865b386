from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.psych.definitions import DefinitionError, definition_files, scales_sync


class Command(BaseCommand):
    help = "Validate and publish scale definition JSON files (built-in, PSYCH_SCALE_DIRS, or the given files)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("files", nargs="*", help="definition files; default: every known directory")

    def handle(self, *args: Any, **options: Any) -> None:
        paths = [Path(p) for p in options["files"]] or definition_files()
        try:
            counts = scales_sync(paths)
        except DefinitionError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"scales: {counts['created']} published, {counts['unchanged']} unchanged")
