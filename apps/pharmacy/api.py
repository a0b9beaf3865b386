"""/api/v1/pharmacy/: catalogue, prescriptions (doctor), review (pharmacist),
my prescriptions (patient), allergies, the sandbox CA certificate.

Every prescription is checked against the caller (``selectors.prescription_visible``
/ ``prescription_of_doctor``); any other id answers the same 404, audited. Staff
reads of a prescription are audited (R10)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Status

from apps.accounts.models import User
from apps.accounts.roles import Role
from apps.audit.services import audit_record
from apps.core.lifecycle import allowed_actions
from apps.delivery.errors import DeliveryCode
from hub.auth import require_roles
from hub.errors import HubCode, Invalid, errors
from hub.pagination import PageParams, page

from . import ca, selectors, services
from .allergies import allergies_of
from .delivery_source import prescription_choose_delivery
from .errors import PharmacyCode
from .models import Drug, Prescription
from .rules import DraftInput, LineInput
from .schemas import (
    AllergyIn,
    AllergyListOut,
    AllergyOut,
    ApproveIn,
    CertificateOut,
    CreateIn,
    DeliveryChoiceIn,
    DraftIn,
    DrugListOut,
    EnrolIn,
    PrescriptionListOut,
    PrescriptionOut,
    PrescriptionRejectIn,
    ReasonIn,
    SignIn,
    VocabulariesOut,
)
from .states import DOCTOR_ACTIONS, PHARMACIST_ACTIONS, PRESCRIPTION_TRANSITIONS

router = Router()

ACTIONS_BY_ROLE: dict[str, tuple[str, ...]] = {Role.DOCTOR: DOCTOR_ACTIONS, Role.PHARMACIST: PHARMACIST_ACTIONS}
RULE_CODES = (
    PharmacyCode.NO_LINES,
    PharmacyCode.TOO_MANY_DRUGS,
    PharmacyCode.DUPLICATE_DRUG,
    PharmacyCode.TCM_PIECES_MIXED,
    PharmacyCode.SUPPLY_DAYS_EXCEEDED,
    PharmacyCode.CHRONIC_DAYS_EXCEEDED,
    PharmacyCode.QUANTITY_EXCEEDS_DAYS,
    PharmacyCode.CONTROLLED_DRUG,
    PharmacyCode.DRUG_NOT_ONLINE,
    PharmacyCode.DRUG_UNKNOWN,
    PharmacyCode.FREQUENCY_UNKNOWN,
    PharmacyCode.ROUTE_UNKNOWN,
    PharmacyCode.LINE_INVALID,
    PharmacyCode.VALID_DAYS_INVALID,
    PharmacyCode.DIAGNOSIS_REQUIRED,
    PharmacyCode.DIAGNOSIS_CODE_INVALID,
    PharmacyCode.ALLERGY_CONFLICT,
    PharmacyCode.ALLERGY_SOURCE_UNAVAILABLE,
    PharmacyCode.GUARDIAN_REQUIRED,
    PharmacyCode.GUARDIAN_ID_INVALID,
)
CA_CODES = (
    PharmacyCode.CA_NO_CERTIFICATE,
    PharmacyCode.CA_CERT_EXPIRED,
    PharmacyCode.CA_CERT_REVOKED,
    PharmacyCode.CA_PIN_WRONG,
    PharmacyCode.CA_PIN_LOCKED,
    PharmacyCode.CA_PIN_FORMAT,
    PharmacyCode.CA_UNAVAILABLE,
)
OBJ = (HubCode.FORBIDDEN, HubCode.NOT_FOUND, HubCode.VALIDATION_ERROR)


def _out(user: User, p: Prescription) -> dict[str, Any]:
    among = ACTIONS_BY_ROLE.get(user.role, ())
    row = selectors.prescription_row(p, viewer=user)
    return {**row, "allowed_actions": allowed_actions(PRESCRIPTION_TRANSITIONS, p.status, among=among)}


def _draft(payload: DraftIn) -> DraftInput:
    return DraftInput(
        diagnosis=payload.diagnosis,
        icd10_code=payload.icd10_code,
        chronic_reason=payload.chronic_reason,
        valid_days=payload.valid_days,
        guardian_name=payload.guardian.name,
        guardian_relation=payload.guardian.relation,
        guardian_id_number=payload.guardian.id_number,
        note_to_pharmacist=payload.note_to_pharmacist,
        lines=[
            LineInput(
                drug_code=ln.drug_code,
                dose=ln.dose,
                frequency=ln.frequency,
                route=ln.route,
                days=ln.days,
                quantity=ln.quantity,
                instructions=ln.instructions,
            )
            for ln in payload.lines
        ],
    )


# --- catalogue -------------------------------------------------------------------------------


@router.get(
    "/drugs",
    response={200: DrugListOut, **errors(HubCode.FORBIDDEN, HubCode.VALIDATION_ERROR)},
    summary="药品目录检索（医生、药师）",
)
def drug_search(
    request: HttpRequest, params: Query[PageParams], q: str = "", category: str = "", all: bool = False
) -> dict[str, Any]:
    user = require_roles(request, [Role.DOCTOR, Role.PHARMACIST])
    if category and category not in Drug.Category.values:
        raise Invalid("药品类别无效", field="category")
    # Pharmacists also see what cannot be prescribed online (controlled, offline only).
    qs = selectors.drugs_search(
        q=q.strip()[:64], category=category, include_unavailable=all and user.role == Role.PHARMACIST
    )
    return page(qs, params, lambda rows: [selectors.drug_row(d) for d in rows])


@router.get("/vocabularies", response={200: VocabulariesOut, **errors()}, summary="用药频次、给药途径等词表")
def vocabularies(request: HttpRequest) -> dict[str, Any]:
    return selectors.vocabularies()


# --- prescriptions: the doctor ----------------------------------------------------------------


@router.post(
    "/prescriptions",
    response={201: PrescriptionOut, **errors(*OBJ, *RULE_CODES)},
    summary="开具处方草稿（接诊医生，逐项录入）",
)
def prescription_create(request: HttpRequest, payload: CreateIn) -> Status[dict[str, Any]]:
    doctor = require_roles(request, [Role.DOCTOR])
    p = services.prescription_create(
        doctor=doctor,
        patient_id=payload.patient_id,
        draft=_draft(payload),
        source_type=payload.source_type if payload.source_id else "",
        source_id=payload.source_id if payload.source_type else "",
    )
    return Status(201, _out(doctor, p))


@router.put(
    "/prescriptions/{prescription_id}",
    response={200: PrescriptionOut, **errors(*OBJ, *RULE_CODES, PharmacyCode.TRANSITION_REFUSED)},
    summary="修改处方草稿（签名前；整单替换）",
)
def prescription_update(request: HttpRequest, prescription_id: int, payload: DraftIn) -> dict[str, Any]:
    doctor = require_roles(request, [Role.DOCTOR])
    p = services.prescription_update(doctor=doctor, prescription_id=prescription_id, draft=_draft(payload))
    return _out(doctor, p)


@router.post(
    "/prescriptions/{prescription_id}/sign",
    response={
        200: PrescriptionOut,
        **errors(*OBJ, *RULE_CODES, *CA_CODES, PharmacyCode.TRANSITION_REFUSED, PharmacyCode.CONTENT_CHANGED),
    },
    summary="医生电子签名（CA）",
)
def prescription_sign(request: HttpRequest, prescription_id: int, payload: SignIn) -> dict[str, Any]:
    doctor = require_roles(request, [Role.DOCTOR])
    p = services.prescription_sign(doctor=doctor, prescription_id=prescription_id, pin=payload.pin)
    return _out(doctor, p)


@router.post(
    "/prescriptions/{prescription_id}/submit",
    response={
        200: PrescriptionOut,
        **errors(*OBJ, PharmacyCode.TRANSITION_REFUSED, PharmacyCode.SIGNATURE_INVALID, PharmacyCode.EXPIRED),
    },
    summary="提交药师审核",
)
def prescription_submit(request: HttpRequest, prescription_id: int) -> dict[str, Any]:
    doctor = require_roles(request, [Role.DOCTOR])
    return _out(doctor, services.prescription_submit(doctor=doctor, prescription_id=prescription_id))


@router.post(
    "/prescriptions/{prescription_id}/revise",
    response={200: PrescriptionOut, **errors(*OBJ, PharmacyCode.TRANSITION_REFUSED)},
    summary="修改被驳回（或未提交）的处方：原签名作废，修改后须重新签名提交",
)
def prescription_revise(request: HttpRequest, prescription_id: int) -> dict[str, Any]:
    doctor = require_roles(request, [Role.DOCTOR])
    return _out(doctor, services.prescription_revise(doctor=doctor, prescription_id=prescription_id))


@router.post(
    "/prescriptions/{prescription_id}/cancel",
    response={200: PrescriptionOut, **errors(*OBJ, PharmacyCode.TRANSITION_REFUSED)},
    summary="作废处方（医生）",
)
def prescription_cancel(request: HttpRequest, prescription_id: int, payload: ReasonIn) -> dict[str, Any]:
    doctor = require_roles(request, [Role.DOCTOR])
    p = services.prescription_cancel(doctor=doctor, prescription_id=prescription_id, reason=payload.reason)
    return _out(doctor, p)


# --- prescriptions: reading ----------------------------------------------------------------------


@router.get(
    "/prescriptions",
    response={200: PrescriptionListOut, **errors(HubCode.FORBIDDEN, HubCode.VALIDATION_ERROR)},
    summary="处方列表（医生：我开具的；药师：已提交审核的；患者：本人及家庭成员的）",
)
def prescription_list(
    request: HttpRequest, params: Query[PageParams], status: str = "", patient_id: int | None = None
) -> dict[str, Any]:
    user = require_roles(request, [Role.DOCTOR, Role.PHARMACIST, Role.PATIENT])
    if status and status not in Prescription.Status.values:
        raise Invalid("状态无效", field="status")
    qs = selectors.visible_query(user).order_by("-created_at", "-id")
    if status:
        qs = qs.filter(status=status)
    if patient_id is not None:
        qs = qs.filter(patient_id=patient_id)
    return page(qs, params, lambda rows: [_out(user, p) for p in rows])


@router.get(
    "/prescriptions/{prescription_id}",
    response={200: PrescriptionOut, **errors(*OBJ)},
    summary="处方详情（含电子签名校验结果）",
)
def prescription_detail(request: HttpRequest, prescription_id: int) -> dict[str, Any]:
    user = require_roles(request, [Role.DOCTOR, Role.PHARMACIST, Role.PATIENT])
    p = selectors.prescription_visible(user, prescription_id)
    if user.role != Role.PATIENT:
        audit_record(action="pharmacy.prescription_view", actor=user, object_type="prescription", object_id=p.pk)
    return _out(user, p)


# --- the pharmacist -------------------------------------------------------------------------------


@router.get(
    "/review-queue",
    response={200: PrescriptionListOut, **errors(HubCode.FORBIDDEN, HubCode.VALIDATION_ERROR)},
    summary="待审核处方（药师；先提交的在前，含患者年龄、性别、过敏史与处方明细）",
)
def review_queue(request: HttpRequest, params: Query[PageParams]) -> dict[str, Any]:
    pharmacist = require_roles(request, [Role.PHARMACIST])
    result = page(selectors.review_queue(), params, lambda rows: [_out(pharmacist, p) for p in rows])
    audit_record(
        action="pharmacy.review_queue_view",
        actor=pharmacist,
        object_type="prescription",
        detail={"count": len(result["items"]), "ids": [row["id"] for row in result["items"]]},
    )
    return result


@router.post(
    "/prescriptions/{prescription_id}/approve",
    response={
        200: PrescriptionOut,
        **errors(*OBJ, PharmacyCode.TRANSITION_REFUSED, PharmacyCode.SIGNATURE_INVALID, PharmacyCode.EXPIRED),
    },
    summary="审核通过（药师）",
)
def prescription_approve(request: HttpRequest, prescription_id: int, payload: ApproveIn) -> dict[str, Any]:
    pharmacist = require_roles(request, [Role.PHARMACIST])
    p = services.prescription_approve(pharmacist=pharmacist, prescription_id=prescription_id, note=payload.note)
    return _out(pharmacist, p)


@router.post(
    "/prescriptions/{prescription_id}/reject",
    response={200: PrescriptionOut, **errors(*OBJ, PharmacyCode.TRANSITION_REFUSED, PharmacyCode.REASON_REQUIRED)},
    summary="审核驳回（药师，须填写原因，退回医生修改）",
)
def prescription_reject(request: HttpRequest, prescription_id: int, payload: PrescriptionRejectIn) -> dict[str, Any]:
    pharmacist = require_roles(request, [Role.PHARMACIST])
    p = services.prescription_reject(
        pharmacist=pharmacist, prescription_id=prescription_id, reason=payload.reason, note=payload.note
    )
    return _out(pharmacist, p)


@router.post(
    "/prescriptions/{prescription_id}/dispense",
    response={
        200: PrescriptionOut,
        **errors(*OBJ, PharmacyCode.NOT_PAID, PharmacyCode.SIGNATURE_INVALID, PharmacyCode.OUT_OF_STOCK),
    },
    summary="发药（药师；仅限已支付的处方）",
)
def prescription_dispense(request: HttpRequest, prescription_id: int) -> dict[str, Any]:
    pharmacist = require_roles(request, [Role.PHARMACIST])
    return _out(pharmacist, services.prescription_dispense(pharmacist=pharmacist, prescription_id=prescription_id))


@router.post(
    "/prescriptions/{prescription_id}/delivery",
    response={
        200: PrescriptionOut,
        **errors(*OBJ, PharmacyCode.DELIVERY_LOCKED, DeliveryCode.COURIER_CONSENT_MISSING),
    },
    summary="选择取药方式（患者：快递到家或到院自取；发药时按此生成配送单）",
)
def prescription_delivery(request: HttpRequest, prescription_id: int, payload: DeliveryChoiceIn) -> dict[str, Any]:
    user = require_roles(request, [Role.PATIENT])
    p = prescription_choose_delivery(
        user=user, prescription_id=prescription_id, method=payload.method, address_id=payload.address_id
    )
    return _out(user, p)


# --- allergies --------------------------------------------------------------------------------------


@router.get(
    "/patients/{patient_id}/allergies",
    response={200: AllergyListOut, **errors(*OBJ, PharmacyCode.ALLERGY_SOURCE_UNAVAILABLE)},
    summary="就诊人过敏史（所有来源）",
)
def allergy_list(request: HttpRequest, patient_id: int) -> dict[str, Any]:
    user = require_roles(request, [Role.PATIENT, Role.DOCTOR, Role.PHARMACIST, Role.NURSE])
    patient = selectors.patient_for_allergies(user, patient_id)
    return {"items": [selectors.allergy_row(a) for a in allergies_of(patient.pk)]}


@router.post(
    "/patients/{patient_id}/allergies",
    response={201: AllergyOut, **errors(*OBJ)},
    summary="登记过敏史（医护：医院记录；患者：自述）",
)
def allergy_add(request: HttpRequest, patient_id: int, payload: AllergyIn) -> Status[dict[str, Any]]:
    user = require_roles(request, [Role.PATIENT, Role.DOCTOR, Role.PHARMACIST, Role.NURSE])
    row = services.allergy_add(actor=user, patient_id=patient_id, allergen=payload.allergen, reaction=payload.reaction)
    return Status(
        201,
        {
            "id": row.pk,
            "allergen": row.allergen,
            "reaction": row.reaction,
            "source": row.source,
            "source_label": row.get_source_display(),
            "recorded_at": row.recorded_at,
        },
    )


# --- the signing certificate --------------------------------------------------------------------------


def _cert_out(info: ca.CertificateInfo | None, signer_name: str) -> dict[str, Any]:
    if info is None:
        return {"enrolled": False, "signer": signer_name}
    return {"enrolled": True, "signer": signer_name, **info.__dict__}


@router.get(
    "/ca/certificate",
    response={200: CertificateOut, **errors(HubCode.FORBIDDEN, PharmacyCode.CA_UNAVAILABLE)},
    summary="我的电子签名证书（医生）",
)
def certificate(request: HttpRequest) -> dict[str, Any]:
    doctor = require_roles(request, [Role.DOCTOR])
    signer = ca.signer()
    return _cert_out(signer.certificate(doctor), signer.name)


@router.post(
    "/ca/enrol",
    response={
        201: CertificateOut,
        **errors(
            HubCode.FORBIDDEN,
            HubCode.VALIDATION_ERROR,
            PharmacyCode.CA_PIN_FORMAT,
            PharmacyCode.CA_ALREADY_ENROLLED,
            PharmacyCode.CA_SANDBOX_ONLY,
            PharmacyCode.CA_UNAVAILABLE,
        ),
    },
    summary="申领沙箱电子签名证书（仅沙箱；设置6位签名密码）",
)
def enrol(request: HttpRequest, payload: EnrolIn) -> Status[dict[str, Any]]:
    doctor = require_roles(request, [Role.DOCTOR])
    info = services.ca_enrol(doctor=doctor, pin=payload.pin)
    return Status(201, _cert_out(info, "sandbox"))
