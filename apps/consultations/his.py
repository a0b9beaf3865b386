"""The hospital information system (HIS) adapter: the prior diagnoses (R1) the hospital
holds for a 就诊人, imported as ``PriorRecord`` rows (source ``his``).

``CONSULT_HIS_ADAPTER`` names a class implementing :class:`HisClient`, loaded
through ``hub.outside.load`` (a sandbox is refused in production). The exchange
is the one hospital integration gateways use: a JSON request signed with
HMAC-SHA256 over the canonical request (method, path, app id, timestamp, nonce,
SHA-256 of the body), the answer signed the same way over its status, nonce and
body; a response whose signature does not verify is refused like a timeout. The
patient travels as the keyed hash of the ID number (never the number itself), and
the answer is a FHIR R4 ``Bundle`` of ``Condition`` resources.

:class:`SandboxHisClient` plays the gateway in-process: it verifies the request's
signature, answers the demo patients' records (keyed by the ID-number hash; records
enrolled with :func:`sandbox_enrol` too), signs its answer, and fails on request
(``CONSULT_HIS_SANDBOX_FAILURE``: ``timeout``, ``error``, ``bad_signature``).

The lead calls :func:`register` from ``ConsultationsConfig.ready()``."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any, Protocol

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.models import Patient
from apps.audit.services import audit_record
from hub import outside

from .errors import ConsultCode, ConsultError
from .models import PriorRecord

log = logging.getLogger(__name__)
LABEL = "CONSULT_HIS_ADAPTER"
PATH = "/fhir/Condition/_search"
ICD10_SYSTEM = "http://hl7.org/fhir/sid/icd-10"
SUMMARY_EXT = "urn:ihospital:his:summary"


@dataclass(frozen=True)
class HisDiagnosis:
    """One diagnosis on file at the hospital."""

    his_ref: str
    hospital: str
    visit_date: dt.date | None
    icd10_code: str
    diagnosis: str
    summary: str


class HisClient(Protocol):
    """One HIS gateway. ``diagnoses`` raises ``ConsultError(consult.his_unavailable)``
    on a timeout, an error answer or an answer that fails verification."""

    def diagnoses(self, patient: Patient) -> list[HisDiagnosis]: ...


def configured_paths() -> list[str]:
    return [settings.CONSULT_HIS_ADAPTER] if settings.CONSULT_HIS_ADAPTER else []


def register() -> None:
    """Register the adapter setting for the production guard (``hub.E010``).
    Called from ``ConsultationsConfig.ready()``."""
    outside.register_adapter_setting(LABEL, configured_paths)


def client() -> HisClient:
    """The configured HIS; a sandbox in production raises ``SandboxInProduction``."""
    path = settings.CONSULT_HIS_ADAPTER
    if not path:
        raise ConsultError(ConsultCode.HIS_UNAVAILABLE)
    cls = outside.load(path, label=LABEL)
    instance: HisClient = cls()
    return instance


# --- the signed exchange ----------------------------------------------------------------


def shared_key() -> bytes:
    raw = settings.CONSULT_HIS_SECRET
    if raw:
        return raw.encode()
    # The sandbox's own key, derived from the sandbox secret (never a real gateway's).
    return hmac.new(settings.SANDBOX_SECRET.encode(), b"consult-his-sandbox/v1", hashlib.sha256).digest()


def _sign(key: bytes, *parts: str) -> str:
    return base64.b64encode(hmac.new(key, "\n".join(parts).encode(), hashlib.sha256).digest()).decode()


@dataclass(frozen=True)
class HisRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class HisResponse:
    status: int
    headers: dict[str, str]
    body: bytes


def canonical_request(method: str, path: str, app_id: str, timestamp: str, nonce: str, body: bytes) -> list[str]:
    return [method.upper(), path, app_id, timestamp, nonce, hashlib.sha256(body).hexdigest()]


def canonical_response(status: int, nonce: str, body: bytes) -> list[str]:
    return [str(status), nonce, hashlib.sha256(body).hexdigest()]


def build_request(patient_key: str, *, key: bytes, app_id: str, now: float | None = None) -> HisRequest:
    body = json.dumps({"patient": {"identifier_hash": patient_key}}, separators=(",", ":")).encode()
    timestamp = str(int(now if now is not None else time.time()))
    nonce = secrets.token_hex(12)
    signature = _sign(key, *canonical_request("POST", PATH, app_id, timestamp, nonce, body))
    headers = {
        "Content-Type": "application/fhir+json",
        "X-App-Id": app_id,
        "X-Timestamp": timestamp,
        "X-Nonce": nonce,
        "X-Signature": signature,
    }
    return HisRequest("POST", PATH, headers, body)


def verify_response(request: HisRequest, response: HisResponse, *, key: bytes) -> bool:
    nonce = request.headers["X-Nonce"]
    if response.headers.get("X-Nonce") != nonce:
        return False
    expected = _sign(key, *canonical_response(response.status, nonce, response.body))
    return hmac.compare_digest(expected, response.headers.get("X-Signature", ""))


def parse_bundle(body: bytes) -> list[HisDiagnosis]:
    """A FHIR ``Bundle`` of ``Condition`` resources -> diagnoses (malformed -> ``ValueError``)."""
    data = json.loads(body)
    if data.get("resourceType") != "Bundle":
        raise ValueError("not a Bundle")
    found = []
    for entry in data.get("entry", []):
        res = entry["resource"]
        if res.get("resourceType") != "Condition":
            continue
        coding: dict[str, Any] = next(
            (c for c in res.get("code", {}).get("coding", []) if c.get("system") == ICD10_SYSTEM), {}
        )
        recorded = res.get("recordedDate") or ""
        summary = next((e.get("valueString", "") for e in res.get("extension", []) if e.get("url") == SUMMARY_EXT), "")
        found.append(
            HisDiagnosis(
                his_ref=str(res["id"])[:64],
                hospital=str(res.get("asserter", {}).get("display", ""))[:64],
                visit_date=dt.date.fromisoformat(recorded[:10]) if recorded else None,
                icd10_code=str(coding.get("code", ""))[:16],
                diagnosis=str(res.get("code", {}).get("text") or coding.get("display", "")),
                summary=str(summary),
            )
        )
    return found


def to_bundle(records: list[HisDiagnosis]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(records),
        "entry": [
            {
                "resource": {
                    "resourceType": "Condition",
                    "id": r.his_ref,
                    "clinicalStatus": {"coding": [{"code": "active"}]},
                    "code": {
                        "coding": [{"system": ICD10_SYSTEM, "code": r.icd10_code, "display": r.diagnosis}],
                        "text": r.diagnosis,
                    },
                    "recordedDate": r.visit_date.isoformat() if r.visit_date else None,
                    "asserter": {"display": r.hospital},
                    "extension": [{"url": SUMMARY_EXT, "valueString": r.summary}],
                }
            }
            for r in records
        ],
    }


class SignedHisClient:
    """The exchange over a transport (``_send``): signs, sends, verifies, parses."""

    def _send(self, request: HisRequest, *, timeout: float) -> HisResponse:
        raise NotImplementedError

    def diagnoses(self, patient: Patient) -> list[HisDiagnosis]:
        key = shared_key()
        request = build_request(patient.id_number_hash, key=key, app_id=settings.CONSULT_HIS_APP_ID)
        try:
            response = self._send(request, timeout=settings.CONSULT_HIS_TIMEOUT_SECONDS)
        except (TimeoutError, OSError) as exc:
            log.warning("HIS unreachable: %s", type(exc).__name__)
            raise ConsultError(ConsultCode.HIS_UNAVAILABLE) from None
        if not verify_response(request, response, key=key):
            log.warning("HIS answer failed signature verification")
            raise ConsultError(ConsultCode.HIS_UNAVAILABLE)
        if response.status != 200:
            log.warning("HIS answered %s", response.status)
            raise ConsultError(ConsultCode.HIS_UNAVAILABLE)
        try:
            return parse_bundle(response.body)
        except (ValueError, KeyError, TypeError):
            log.warning("HIS answer is not a Condition bundle")
            raise ConsultError(ConsultCode.HIS_UNAVAILABLE) from None


# --- the sandbox gateway -------------------------------------------------------------

SANDBOX_HOSPITAL = "本院（沙箱HIS）"
# The demo 就诊人 (seed_demo) by name: what the sandbox hospital has on file for them.
DEMO_RECORDS: dict[str, list[tuple[str, str, str, str]]] = {
    "张伟": [("I10", "原发性高血压", "2026-09-12", "门诊：血压158/96mmHg，予氨氯地平5mg qd，嘱低盐饮食，1个月复诊。")],
    "王芳": [("E11.9", "2型糖尿病", "2026-08-03", "门诊：空腹血糖8.2mmol/L，HbA1c 7.4%，二甲双胍0.5g bid。")],
    "张小明": [("J45.9", "支气管哮喘", "2026-10-20", "门诊：轻度持续，布地奈德吸入，哮喘行动计划已宣教。")],
    "李娜": [("K29.5", "慢性胃炎", "2026-07-15", "胃镜：慢性非萎缩性胃炎，Hp阴性，予抑酸治疗4周。")],
    "李建国": [
        ("I25.1", "冠状动脉粥样硬化性心脏病", "2026-06-01", "出院小结：PCI术后，阿司匹林+氯吡格雷双抗12个月。"),
        ("I10", "原发性高血压", "2026-06-01", "住院期间血压控制可，出院继续缬沙坦80mg qd。"),
    ],
}
DEMO_PHONES = ("13800138001", "13800138002", "13800138003")
# Enrolled by tests and tools: ID-number hash -> records.
_enrolled: dict[str, list[HisDiagnosis]] = {}


def sandbox_enrol(patient: Patient, records: list[HisDiagnosis]) -> None:
    """Put ``records`` on file at the sandbox hospital for ``patient`` (tests, demos)."""
    _enrolled[patient.id_number_hash] = list(records)


def sandbox_clear() -> None:
    _enrolled.clear()


def _demo_records(patient_key: str) -> list[HisDiagnosis]:
    from apps.accounts.demo import demo_patient

    for phone in DEMO_PHONES:
        owner = demo_patient(phone)
        if owner is None:
            continue
        for p in Patient.objects.filter(owner=owner, id_number_hash=patient_key):
            return [
                HisDiagnosis(
                    his_ref=f"SBX-{hashlib.sha256(f'{patient_key}:{i}'.encode()).hexdigest()[:12]}",
                    hospital=SANDBOX_HOSPITAL,
                    visit_date=dt.date.fromisoformat(day),
                    icd10_code=code,
                    diagnosis=text,
                    summary=summary,
                )
                for i, (code, text, day, summary) in enumerate(DEMO_RECORDS.get(p.name, []))
            ]
    return []


def sandbox_gateway(request: HisRequest, *, key: bytes, now: float | None = None) -> HisResponse:
    """The sandbox hospital's side: verify, look up, sign the answer."""
    nonce = request.headers.get("X-Nonce", "")

    def answer(status: int, payload: dict[str, Any]) -> HisResponse:
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        signature = _sign(key, *canonical_response(status, nonce, body))
        return HisResponse(status, {"X-Nonce": nonce, "X-Signature": signature}, body)

    h = request.headers
    expected = _sign(
        key, *canonical_request(request.method, request.path, h["X-App-Id"], h["X-Timestamp"], nonce, request.body)
    )
    if not hmac.compare_digest(expected, h.get("X-Signature", "")):
        return answer(401, {"resourceType": "OperationOutcome", "issue": [{"code": "security"}]})
    if abs((now if now is not None else time.time()) - int(h["X-Timestamp"])) > 300:
        return answer(401, {"resourceType": "OperationOutcome", "issue": [{"code": "expired"}]})
    patient_key = json.loads(request.body)["patient"]["identifier_hash"]
    records = _enrolled.get(patient_key)
    if records is None:
        records = _demo_records(patient_key)
    return answer(200, to_bundle(records))


class SandboxHisClient(SignedHisClient):
    """Offline HIS gateway for development and tests; never in production."""

    sandbox = True

    def _send(self, request: HisRequest, *, timeout: float) -> HisResponse:
        failure = settings.CONSULT_HIS_SANDBOX_FAILURE
        if failure == "timeout":
            raise TimeoutError(f"no answer within {timeout}s")
        response = sandbox_gateway(request, key=shared_key())
        if failure == "error":
            body = b'{"resourceType":"OperationOutcome"}'
            nonce = request.headers["X-Nonce"]
            return HisResponse(
                502, {"X-Nonce": nonce, "X-Signature": _sign(shared_key(), *canonical_response(502, nonce, body))}, body
            )
        if failure == "bad_signature":
            return HisResponse(response.status, {**response.headers, "X-Signature": "forged"}, response.body)
        return response


# --- the import --------------------------------------------------------------------


def sync(*, patient: Patient, actor: Any) -> int:
    """Import the HIS's diagnoses of ``patient`` (idempotent by ``his_ref``); the number
    newly written. The HIS is asked before anything is written: a failure writes nothing."""
    try:
        adapter = client()
    except outside.SandboxInProduction:
        log.error("%s: a sandbox HIS is refused in production", LABEL)
        raise ConsultError(ConsultCode.HIS_UNAVAILABLE) from None
    found = adapter.diagnoses(patient)
    created = 0
    with transaction.atomic():
        existing = set(
            PriorRecord.objects.filter(patient=patient, source=PriorRecord.Source.HIS).values_list("his_ref", flat=True)
        )
        for d in found:
            if not d.his_ref or d.his_ref in existing:
                continue
            try:
                with transaction.atomic():  # a concurrent sync may have written it: skip, never twice
                    PriorRecord.objects.create(
                        patient=patient,
                        source=PriorRecord.Source.HIS,
                        his_ref=d.his_ref,
                        hospital=d.hospital,
                        visit_date=d.visit_date,
                        icd10_code=d.icd10_code,
                        diagnosis=d.diagnosis,
                        summary=d.summary,
                        # From the hospital's own system: on file, no doctor's review needed (R1).
                        review=PriorRecord.Review.ACCEPTED,
                        reviewed_at=timezone.now(),
                    )
            except IntegrityError:
                continue
            existing.add(d.his_ref)
            created += 1
        audit_record(
            action="consult.his_sync",
            actor=actor,
            object_type="patient",
            object_id=patient.pk,
            detail={"found": len(found), "created": created},
        )
    return created
