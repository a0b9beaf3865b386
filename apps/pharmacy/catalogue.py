"""Vocabularies and the seed catalogue as data (``data/*.json``).

Frequencies and routes are synced after every migrate (and after a test flush):
codes are stable, labels follow the file. The small demo catalogue is added
only where ``PHARMACY_SEED_CATALOGUE`` (not in production, where the catalogue
comes from the hospital's HIS) and never overwrites an existing code, so an
edited price or a deactivated item stays as the pharmacy set it.
``manage.py pharmacy_load_catalogue`` loads it on demand."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

from .models import Drug, Frequency, Route

DATA = Path(__file__).resolve().parent / "data"


def _load(name: str) -> dict[str, Any]:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def vocabularies_sync() -> None:
    data = _load("vocabularies.json")
    with transaction.atomic():
        for i, f in enumerate(data["frequencies"]):
            Frequency.objects.update_or_create(
                code=f["code"],
                defaults={
                    "label": f["label"],
                    "doses_per_period": f["doses_per_period"],
                    "period_days": f["period_days"],
                    "sort": i,
                },
            )
        for i, r in enumerate(data["routes"]):
            Route.objects.update_or_create(code=r["code"], defaults={"label": r["label"], "sort": i})


def catalogue_load(path: Path | None = None) -> int:
    """Add the file's drugs whose code is not in the catalogue yet; returns how many."""
    data = json.loads(path.read_text(encoding="utf-8")) if path else _load("catalogue.json")
    freq = {f.code: f for f in Frequency.objects.all()}
    routes = {r.code: r for r in Route.objects.all()}
    added = 0
    with transaction.atomic():
        existing = set(Drug.objects.values_list("code", flat=True))
        for d in data["drugs"]:
            if d["code"] in existing:
                continue
            fields = {k: v for k, v in d.items() if k not in ("default_frequency", "default_route", "pack_dose")}
            Drug.objects.create(
                **fields,
                pack_dose=Decimal(d["pack_dose"]) if d.get("pack_dose") else None,
                default_frequency=freq.get(d.get("default_frequency", "")),
                default_route=routes.get(d.get("default_route", "")),
            )
            added += 1
    return added


def sync_after_migrate() -> None:
    vocabularies_sync()
    if settings.PHARMACY_SEED_CATALOGUE:
        catalogue_load()
