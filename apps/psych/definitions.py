"""Scale definitions are data: JSON files validated and expanded here, then
stored as immutable, versioned rows (``ScaleDefinition``).

A file names option sets once and items refer to them; on load every item gets
its own option list with a value per option, so reverse-scored items are just
options whose values run the other way (no reverse flags in code). A stored
(code, version) never changes: new wording or scoring means a new version."""

from __future__ import annotations

import copy
import hashlib
import json
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

BUILTIN_DIR = Path(__file__).resolve().parent / "scales"
OPS = {">=", ">", "==", "<=", "<"}
ROUNDINGS = {"none", "truncate", "round", "setting"}


class DefinitionError(ValueError):
    """A scale definition file is malformed; the message says where."""


def _fail(code: str, message: str) -> DefinitionError:
    return DefinitionError(f"{code}: {message}")


def expand(raw: dict[str, Any]) -> dict[str, Any]:
    """Validate a definition and return it with option sets expanded into each
    item. Raises DefinitionError naming the first problem."""
    data = copy.deepcopy(raw)
    code = data.get("code")
    if not isinstance(code, str) or not code or len(code) > 32:
        raise DefinitionError("definition without a valid code")
    version = data.get("version")
    if not isinstance(version, int) or version < 1:
        raise _fail(code, "version must be a positive integer")
    for key in ("name", "short_name", "time_frame", "instructions", "licence"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise _fail(code, f"missing {key}")
    sets = data.pop("option_sets", {}) or {}
    items = data.get("items")
    if not isinstance(items, list) or not items:
        raise _fail(code, "no items")
    for index, item in enumerate(items, start=1):
        if item.get("no") != index:
            raise _fail(code, f"items must be numbered 1..n in order (item {index})")
        if not isinstance(item.get("text"), str) or not item["text"]:
            raise _fail(code, f"item {index} has no text")
        options = item.get("options")
        if isinstance(options, str):
            if options not in sets:
                raise _fail(code, f"item {index} refers to unknown option set {options!r}")
            options = copy.deepcopy(sets[options])
        if not isinstance(options, list) or len(options) < 2:
            raise _fail(code, f"item {index} needs at least two options")
        values = []
        for option in options:
            if not isinstance(option.get("label"), str) or not isinstance(option.get("value"), int):
                raise _fail(code, f"item {index} has an option without label or integer value")
            values.append(option["value"])
        if len(set(values)) != len(values):
            raise _fail(code, f"item {index} has duplicate option values")
        item["options"] = options

    scoring = data.get("scoring") or {}
    if scoring.get("method") != "sum":
        raise _fail(code, "only the 'sum' scoring method is supported")
    try:
        multiplier = Decimal(str(scoring.get("multiplier", "1")))
    except InvalidOperation as exc:
        raise _fail(code, "multiplier is not a number") from exc
    if multiplier <= 0:
        raise _fail(code, "multiplier must be positive")
    scoring["multiplier"] = str(multiplier)
    if scoring.get("rounding", "none") not in ROUNDINGS:
        raise _fail(code, f"rounding must be one of {sorted(ROUNDINGS)}")
    scoring.setdefault("rounding", "none")
    raw_min = sum(min(o["value"] for o in it["options"]) for it in items)
    raw_max = sum(max(o["value"] for o in it["options"]) for it in items)
    scoring["raw_range"] = [raw_min, raw_max]
    data["scoring"] = scoring

    norms = data.get("norms")
    if not isinstance(norms, dict) or not norms:
        raise _fail(code, "no norms")
    if data.get("norm") == "setting":
        missing = {"china", "zung"} - set(norms)
        if missing:
            raise _fail(code, f"norm from the setting needs norms {sorted(missing)}")
    elif data.get("norm") != "default" or "default" not in norms:
        raise _fail(code, "norm must be 'default' (with a default norm) or 'setting'")
    # Every possible standard score must fall in exactly one band, under every
    # rounding the definition allows.
    roundings = ["truncate", "round"] if scoring["rounding"] == "setting" else [scoring["rounding"]]
    for norm_key, norm in norms.items():
        bands = norm.get("bands")
        if not isinstance(norm.get("label"), str) or not isinstance(bands, list) or not bands:
            raise _fail(code, f"norm {norm_key} needs a label and bands")
        for band in bands:
            for key in ("min", "max", "severity"):
                if not isinstance(band.get(key), int):
                    raise _fail(code, f"norm {norm_key}: band {band.get('code')} needs integer {key}")
            for key in ("code", "label", "advice"):
                if not isinstance(band.get(key), str) or not band[key]:
                    raise _fail(code, f"norm {norm_key}: band needs {key}")
        for rounding in roundings:
            for raw_score in range(raw_min, raw_max + 1):
                standard = standardise(raw_score, multiplier, rounding)
                hits = [b for b in bands if b["min"] <= standard <= b["max"]]
                if len(hits) != 1:
                    raise _fail(code, f"norm {norm_key}: standard score {standard} falls in {len(hits)} bands")
    for rule in data.get("critical", []) or []:
        if not isinstance(rule.get("item"), int) or not 1 <= rule["item"] <= len(items):
            raise _fail(code, f"critical rule refers to a missing item {rule.get('item')}")
        if rule.get("op") not in OPS or not isinstance(rule.get("value"), int):
            raise _fail(code, "critical rule needs op and integer value")
        if not rule.get("code") or not rule.get("label"):
            raise _fail(code, "critical rule needs code and label")
    data["critical"] = data.get("critical") or []
    for flag in data.get("flags", []) or []:
        if flag.get("op") not in OPS or not isinstance(flag.get("value"), int) or not flag.get("label"):
            raise _fail(code, "flag needs op, integer value and label")
    data["flags"] = data.get("flags") or []
    return data


def standardise(raw: int, multiplier: Decimal, rounding: str) -> int:
    """Raw score to standard score. ``truncate`` is the manuals' int(raw x 1.25);
    ``round`` rounds half up. Decimal keeps 52.5 exactly 52.5."""
    value = Decimal(raw) * multiplier
    if rounding == "round":
        return int(value.quantize(Decimal(1), rounding="ROUND_HALF_UP"))
    return int(value)  # truncates toward zero; scores are never negative


def content_hash(data: dict[str, Any]) -> str:
    text = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def definition_files() -> list[Path]:
    dirs = [BUILTIN_DIR, *(Path(d) for d in getattr(settings, "PSYCH_SCALE_DIRS", []))]
    files: list[Path] = []
    for directory in dirs:
        if directory.is_dir():
            files.extend(sorted(directory.glob("*.json")))
    return files


def load_file(path: Path) -> dict[str, Any]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DefinitionError(f"{path.name}: {exc}") from exc
    return expand(raw)


def scales_sync(paths: list[Path] | None = None) -> dict[str, int]:
    """Store every definition file not stored yet. A (code, version) already
    stored with different content is refused: published versions are immutable.
    Safe to re-run."""
    from .models import ScaleDefinition

    created = unchanged = 0
    for path in paths if paths is not None else definition_files():
        data = load_file(path)
        digest = content_hash(data)
        with transaction.atomic():
            row = ScaleDefinition.objects.filter(code=data["code"], version=data["version"]).first()
            if row is None:
                ScaleDefinition.objects.create(
                    code=data["code"],
                    version=data["version"],
                    name=data["name"],
                    data=data,
                    content_hash=digest,
                )
                created += 1
            elif row.content_hash != digest:
                raise DefinitionError(
                    f"{path.name}: {data['code']} v{data['version']} is already published with other content; "
                    "bump the version"
                )
            else:
                unchanged += 1
    return {"created": created, "unchanged": unchanged}
