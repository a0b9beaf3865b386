"""The audit log as a file: CSV (UTF-8 with BOM, so Excel reads the Chinese) or
XLSX, Chinese headers, Beijing times."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font

from .selectors import beijing, detail_text

HEADERS = [
    "编号",
    "时间（北京时间）",
    "操作人",
    "操作人账号",
    "角色",
    "操作",
    "操作代码",
    "对象",
    "对象编号",
    "结果",
    "IP",
    "请求编号",
    "详情",
]
WIDTHS = [10, 20, 24, 18, 12, 24, 26, 28, 16, 8, 16, 34, 60]

CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}

# A cell starting with one of these is a formula to a spreadsheet; the names typed at
# a failed login are written by anyone, so every text cell is defused.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _safe(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_START) else text


def _cells(row: dict[str, Any]) -> list[Any]:
    return [
        row["id"],
        beijing(row["at"]),
        _safe(row["actor_label"]),
        _safe(row["actor_username"]),
        row["actor_role_label"],
        row["action_label"],
        row["action"],
        _safe(row["object_label"]),
        _safe(row["object_id"]),
        row["result_label"],
        _safe(row["ip"]),
        row["request_id"],
        _safe(detail_text(row["detail_items"])),
    ]


def export_csv(rows: Iterable[dict[str, Any]]) -> tuple[bytes, int]:
    """The file's bytes and the number of data rows."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out)
    writer.writerow(HEADERS)
    n = 0
    for row in rows:
        writer.writerow(_cells(row))
        n += 1
    return out.getvalue().encode("utf-8"), n


def export_xlsx(rows: Iterable[dict[str, Any]]) -> tuple[bytes, int]:
    """The file's bytes and the number of data rows (one sheet, header row frozen)."""
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.utils import get_column_letter

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("审计日志")
    for i, width in enumerate(WIDTHS, start=1):
        ws.column_dimensions[get_column_letter(i)].width = width
    ws.freeze_panes = "A2"
    bold = Font(bold=True)
    header = []
    for title in HEADERS:
        cell = WriteOnlyCell(ws, value=title)
        cell.font = bold
        header.append(cell)
    ws.append(header)
    n = 0
    for row in rows:
        # Strings are stored as text (never parsed as formulas: see ``_safe``).
        ws.append(_cells(row))
        n += 1
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue(), n
