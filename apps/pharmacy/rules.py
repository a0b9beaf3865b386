"""The prescription rules (R6-R8, 处方管理办法), checked before anything is written.

Every rule has its own stable code (``errors.PharmacyCode``); the first broken
rule raises and the caller's transaction writes nothing. The numbers are
settings (``PHARMACY_*``) with the regulation's defaults. Drafts are checked on
every save and again at signing (the catalogue, the allergy record or the
patient's age may have changed in between)."""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from django.conf import settings

from apps.accounts.idcard import InvalidIdNumber, parse_id_number
from apps.accounts.models import Patient
from apps.accounts.selectors import age_of
from hub.errors import Invalid

from .allergies import allergies_of, matching_allergy
from .errors import PharmacyCode, PharmacyError
from .models import Drug, Frequency, Prescription, Route

ICD10 = re.compile(r"^[A-Z][0-9]{2}(\.[0-9A-Z]{1,4})?$")
GUARDIAN_AGE = 6  # R3: children under 6 need a guardian recorded
MAX_DOSE = Decimal("100000")
MAX_QUANTITY = Decimal("100000")


@dataclass
class LineInput:
    drug_code: str
    dose: Decimal
    frequency: str
    route: str
    days: int
    quantity: Decimal
    instructions: str = ""


@dataclass
class DraftInput:
    diagnosis: str
    icd10_code: str = ""
    chronic_reason: str = ""
    valid_days: int = 1
    guardian_name: str = ""
    guardian_relation: str = ""
    guardian_id_number: str = ""
    note_to_pharmacist: str = ""
    lines: list[LineInput] = field(default_factory=list)


@dataclass
class CheckedLine:
    position: int
    drug: Drug
    frequency: Frequency
    route: Route
    data: LineInput


def _decimal(value: Decimal, position: int, name: str, limit: Decimal) -> Decimal:
    try:
        d = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise PharmacyError(PharmacyCode.LINE_INVALID, position=position, field=name) from None
    if not d.is_finite() or d <= 0 or d > limit or d.as_tuple().exponent < -3:  # type: ignore[operator]
        raise PharmacyError(PharmacyCode.LINE_INVALID, position=position, field=name)
    return d


def max_quantity(drug: Drug, dose: Decimal, frequency: Frequency, days: int) -> Decimal | None:
    """The most dispensing units ``days`` of this dose need (rounded up to whole
    packs, except for goods sold by weight); None when the catalogue cannot say."""
    if drug.pack_dose is None or drug.pack_dose <= 0 or frequency.doses_per_period == 0:
        return None
    doses = math.ceil(days * frequency.doses_per_period / frequency.period_days)
    need = dose * doses / drug.pack_dose
    if drug.unit == drug.dose_unit:  # sold by weight / count of the dose unit itself (饮片 g)
        return need.quantize(Decimal("0.001"))
    return Decimal(math.ceil(need))


def check_header(draft: DraftInput, patient: Patient, *, today: dt.date) -> None:
    if not draft.diagnosis.strip():
        raise PharmacyError(PharmacyCode.DIAGNOSIS_REQUIRED)
    if draft.icd10_code and not ICD10.match(draft.icd10_code.strip().upper()):
        raise PharmacyError(PharmacyCode.DIAGNOSIS_CODE_INVALID)
    if not 1 <= draft.valid_days <= settings.PHARMACY_MAX_VALID_DAYS:
        raise PharmacyError(PharmacyCode.VALID_DAYS_INVALID, max=settings.PHARMACY_MAX_VALID_DAYS)
    if draft.guardian_relation and draft.guardian_relation not in Prescription.GuardianRelation.values:
        raise Invalid("监护人关系无效", field="guardian.relation")
    if age_of(patient, today) < GUARDIAN_AGE:
        relations = Prescription.GuardianRelation
        if (
            not draft.guardian_name.strip()
            or draft.guardian_relation not in relations.values
            or not (draft.guardian_relation)
        ):
            raise PharmacyError(PharmacyCode.GUARDIAN_REQUIRED, age=age_of(patient, today))
    if draft.guardian_id_number:
        try:
            parse_id_number(draft.guardian_id_number, today=today)
        except InvalidIdNumber:
            raise PharmacyError(PharmacyCode.GUARDIAN_ID_INVALID) from None


def check_lines(draft: DraftInput, patient: Patient) -> tuple[str, list[CheckedLine]]:
    """Resolve and check the lines; returns (prescription kind, lines)."""
    if not draft.lines:
        raise PharmacyError(PharmacyCode.NO_LINES)
    drugs = {d.code: d for d in Drug.objects.filter(code__in=[ln.drug_code for ln in draft.lines], is_active=True)}
    freqs = {f.code: f for f in Frequency.objects.all()}
    routes = {r.code: r for r in Route.objects.all()}
    checked: list[CheckedLine] = []
    seen: set[str] = set()
    for position, ln in enumerate(draft.lines, start=1):
        drug = drugs.get(ln.drug_code)
        if drug is None:
            raise PharmacyError(PharmacyCode.DRUG_UNKNOWN, position=position, drug=ln.drug_code)
        # R7: specially controlled drugs are refused online, whatever the catalogue's online flag says.
        if drug.controlled_class != Drug.Controlled.NONE:
            raise PharmacyError(
                PharmacyCode.CONTROLLED_DRUG,
                position=position,
                drug=drug.name,
                drug_code=drug.code,
                controlled_class=drug.controlled_class,
                controlled_label=Drug.Controlled(drug.controlled_class).label,
            )
        if not drug.online_allowed:
            raise PharmacyError(PharmacyCode.DRUG_NOT_ONLINE, position=position, drug=drug.name, drug_code=drug.code)
        if drug.code in seen:
            raise PharmacyError(PharmacyCode.DUPLICATE_DRUG, position=position, drug=drug.name)
        seen.add(drug.code)
        frequency = freqs.get(ln.frequency)
        if frequency is None:
            raise PharmacyError(PharmacyCode.FREQUENCY_UNKNOWN, position=position, frequency=ln.frequency)
        route = routes.get(ln.route)
        if route is None:
            raise PharmacyError(PharmacyCode.ROUTE_UNKNOWN, position=position, route=ln.route)
        ln.dose = _decimal(ln.dose, position, "dose", MAX_DOSE)
        ln.quantity = _decimal(ln.quantity, position, "quantity", MAX_QUANTITY)
        if not isinstance(ln.days, int) or ln.days < 1 or len(ln.instructions) > 100:
            raise PharmacyError(PharmacyCode.LINE_INVALID, position=position, field="days")
        checked.append(CheckedLine(position=position, drug=drug, frequency=frequency, route=route, data=ln))

    # R8: decoction pieces (and 饮片代茶饮 tea bags) on their own prescription.
    pieces = [c.drug.is_tcm_pieces for c in checked]
    if any(pieces) and not all(pieces):
        raise PharmacyError(PharmacyCode.TCM_PIECES_MIXED)
    kind = Prescription.Kind.TCM if all(pieces) else Prescription.Kind.WESTERN
    # 处方管理办法 第六条: at most 5 drugs on a Western / patent-medicine prescription
    # (a decoction prescription lists its pieces, which that limit does not count).
    if kind == Prescription.Kind.WESTERN and len(checked) > settings.PHARMACY_MAX_DRUGS:
        raise PharmacyError(PharmacyCode.TOO_MANY_DRUGS, max=settings.PHARMACY_MAX_DRUGS, count=len(checked))

    # R8: supply days; a 长期处方 up to its limit only with a chronic reason.
    chronic = bool(draft.chronic_reason.strip())
    for c in checked:
        days = c.data.days
        if days > settings.PHARMACY_MAX_SUPPLY_DAYS and not chronic:
            raise PharmacyError(
                PharmacyCode.SUPPLY_DAYS_EXCEEDED,
                position=c.position,
                days=days,
                max_days=settings.PHARMACY_MAX_SUPPLY_DAYS,
            )
        if days > settings.PHARMACY_CHRONIC_MAX_DAYS:
            raise PharmacyError(
                PharmacyCode.CHRONIC_DAYS_EXCEEDED,
                position=c.position,
                days=days,
                max_days=settings.PHARMACY_CHRONIC_MAX_DAYS,
            )
        # The quantity may not supply more days than written (else the day limit is moot).
        most = max_quantity(c.drug, c.data.dose, c.frequency, days)
        if most is not None and c.data.quantity > most:
            raise PharmacyError(
                PharmacyCode.QUANTITY_EXCEEDS_DAYS,
                position=c.position,
                quantity=plain_number(c.data.quantity),
                max_quantity=plain_number(most),
            )

    # The allergy record, from every registered source.
    allergies = allergies_of(patient.pk)
    for c in checked:
        hit = matching_allergy(c.drug, allergies)
        if hit is not None:
            raise PharmacyError(
                PharmacyCode.ALLERGY_CONFLICT,
                position=c.position,
                drug=c.drug.name,
                drug_code=c.drug.code,
                allergen=hit.allergen,
                source=hit.source,
                source_label=hit.source_label,
            )
    return kind, checked


def check(draft: DraftInput, patient: Patient, *, today: dt.date) -> tuple[str, list[CheckedLine]]:
    check_header(draft, patient, today=today)
    return check_lines(draft, patient)


def plain_number(value: Decimal) -> str:
    """A dose or quantity as people write it: 20, 0.5, 12.5 (never 2E+1, never 20.000)."""
    text = format(value.normalize(), "f")
    return text
