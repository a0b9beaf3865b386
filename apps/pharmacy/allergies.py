"""Where a patient's allergies come from: a registry of sources.

There is no health-record app yet, so this app keeps the store itself
(``PatientAllergy``, tagged hospital / patient-reported) and registers it as
the first source. The care / health-record app will read and write that table
later, and any other source (the HIS allergy list, an import) registers a
function here in its ``AppConfig.ready()``; the prescription check reads every
source through :func:`allergies_of`. Sources return plain data and never raise
for "no data"; a source that fails makes the check refuse (unknown allergies
are not "no allergies")."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .errors import PharmacyCode, PharmacyError
from .models import Drug, PatientAllergy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Allergy:
    allergen: str  # "青霉素类", "阿莫西林"
    reaction: str
    source: str  # PatientAllergy.Source value, or the source's own code
    source_label: str
    recorded_at: dt.datetime | None = None
    record_id: int | None = None  # the PatientAllergy row, for this app's own source


AllergySource = Callable[[int], Iterable[Allergy]]

_sources: dict[str, AllergySource] = {}


def register_allergy_source(name: str, fn: AllergySource) -> None:
    """One function per source name: ``fn(patient_id) -> Allergy...``; registering
    again replaces it (autoreload, tests)."""
    _sources[name] = fn


def sources() -> list[str]:
    return sorted(_sources)


def stored_allergies(patient_id: int) -> list[Allergy]:
    """The store in this app (the built-in source)."""
    rows = PatientAllergy.objects.filter(patient_id=patient_id, removed_at__isnull=True).order_by("recorded_at", "id")
    return [
        Allergy(
            allergen=r.allergen,
            reaction=r.reaction,
            source=r.source,
            source_label=PatientAllergy.Source(r.source).label,
            recorded_at=r.recorded_at,
            record_id=r.pk,
        )
        for r in rows
    ]


def allergies_of(patient_id: int) -> list[Allergy]:
    """Every allergy of the 就诊人 from every registered source. A source that
    fails raises ``pharmacy.allergy_source_unavailable``: the check cannot pass on
    a record it could not read."""
    found: list[Allergy] = []
    for name in sources():
        try:
            found.extend(_sources[name](patient_id))
        except Exception:
            log.exception("allergy source %r failed for patient %s", name, patient_id)
            raise PharmacyError(PharmacyCode.ALLERGY_SOURCE_UNAVAILABLE, source=name) from None
    return found


def _norm(text: str) -> str:
    return "".join(text.split()).lower()


def matching_allergy(drug: Drug, allergies: Iterable[Allergy]) -> Allergy | None:
    """The first allergy that names this drug: its name, generic name or one of its
    allergen groups (a drug class such as 青霉素类, an ingredient), compared
    without spaces and case; an allergen of two or more characters also matches
    inside the drug's names (过敏 to 阿莫西林 matches 阿莫西林胶囊)."""
    names = [_norm(n) for n in (drug.name, drug.generic_name, *drug.allergen_groups) if n]
    for allergy in allergies:
        a = _norm(allergy.allergen)
        if not a:
            continue
        if a in names or (len(a) >= 2 and any(a in n for n in names)):
            return allergy
    return None
