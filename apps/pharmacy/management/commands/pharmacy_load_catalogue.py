from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from apps.pharmacy.catalogue import catalogue_load, vocabularies_sync


class Command(BaseCommand):
    help = "同步用药频次与给药途径词表，并导入药品目录（已有编码的药品不覆盖）"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--file", type=Path, default=None, help="目录 JSON 文件（默认内置示例目录）")

    def handle(self, *args: Any, **options: Any) -> None:
        vocabularies_sync()
        added = catalogue_load(options["file"])
        self.stdout.write(f"药品目录：新增 {added} 个品种")
