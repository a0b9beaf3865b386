"""Prior records (R1): the diagnoses on file that make a visit a follow-up.

Who reads a 就诊人's records: the owner account; clinical staff holding them in
care (``apps.care_team.selectors.in_care``); the doctor of a visit that cites a
record (that record only). Anyone else gets 404 (audited as denied).

Uploads (a discharge summary, an outpatient record) come with up to
``CONSULT_PRIOR_MAX_FILES`` pages, images or PDF, each at most
``CONSULT_PRIOR_FILE_MAX_MB``; the type is sniffed from the bytes as IM
attachments are (``apps.im.api.sniff``), the client's claim is ignored. Pages are
stored encrypted (AES-GCM through ``hub.crypto``, bound to the page's id) and served
only through :func:`file_fetch` (authorised per record, audited). The doctor of a
visit citing an upload reviews it (accepted / rejected with a note); booking's
accept refuses an unreviewed upload (R1)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from apps.accounts.models import Patient, User
from apps.accounts.roles import CLINICAL_ROLES
from apps.audit.services import audit_record
from apps.care_team.selectors import in_care
from apps.im.api import sniff
from hub import crypto
from hub.errors import Invalid, NotFound

from . import his
from .errors import ConsultCode, ConsultError
from .models import PriorRecord, Visit

ALLOWED_TYPES = {"image/jpeg", "image/png", "image/gif", "image/webp", "application/pdf"}
HISTORY_MAX = 4000


def _denied(user: User, object_type: str, object_id: Any) -> NotFound:
    audit_record(
        action="consult.prior_record_denied", actor=user, object_type=object_type, object_id=object_id, result="denied"
    )
    return NotFound("既往病历")


def _patient(patient_id: int) -> Patient | None:
    return Patient.objects.select_related("owner").filter(pk=patient_id, is_active=True).first()


def _cited_for(user: User) -> QuerySet[Visit]:
    return Visit.objects.filter(doctor__user=user, prior_record__isnull=False)


def records_for(user: User, patient_id: int) -> QuerySet[PriorRecord]:
    """The records of ``patient_id`` ``user`` may read; 404 (audited) when none."""
    patient = _patient(patient_id)
    if patient is None:
        raise _denied(user, "patient", patient_id)
    records = PriorRecord.objects.filter(patient=patient)
    if patient.owner_id == user.pk or (user.role in CLINICAL_ROLES and in_care(user, patient.pk)):
        return records
    cited = records.filter(pk__in=_cited_for(user).values("prior_record_id"))
    if not cited.exists():
        raise _denied(user, "patient", patient_id)
    return cited


def may_read(user: User, record: PriorRecord) -> bool:
    patient = record.patient
    if patient.owner_id == user.pk:
        return True
    if user.role in CLINICAL_ROLES and in_care(user, patient.pk):
        return True
    return _cited_for(user).filter(prior_record=record).exists()


def record_view(record: PriorRecord) -> dict[str, Any]:
    his_row = record.source == PriorRecord.Source.HIS
    return {
        "id": record.public_id,
        "source": record.source,
        "source_label": record.get_source_display(),
        "hospital": record.hospital,
        "visit_date": record.visit_date,
        "icd10_code": record.icd10_code,
        "diagnosis": record.diagnosis,
        "summary": record.summary,
        "files": [
            {
                "id": f["id"],
                "name": f.get("name", ""),
                "content_type": f["content_type"],
                "size": f["size"],
                "url": f"/api/v1/consultations/prior-records/{record.public_id}/files/{f['id']}",
            }
            for f in record.files
        ],
        "review": record.review,
        "review_label": "本院记录，无需审核" if his_row else record.get_review_display(),
        "reviewed_at": None if his_row else record.reviewed_at,
        "review_note": record.review_note,
        "created_at": record.created_at,
    }


def _owned(user: User, patient_id: int) -> Patient:
    patient = _patient(patient_id)
    if patient is None or patient.owner_id != user.pk:
        raise _denied(user, "patient", patient_id)
    return patient


def his_sync(*, user: User, patient_id: int) -> QuerySet[PriorRecord]:
    patient = _owned(user, patient_id)
    his.sync(patient=patient, actor=user)
    return PriorRecord.objects.filter(patient=patient)


# --- uploads ------------------------------------------------------------------------


@dataclass(frozen=True)
class UploadFile:
    name: str
    data: bytes


def _upload_invalid(reason: str) -> ConsultError:
    return ConsultError(ConsultCode.UPLOAD_INVALID, reason, reason=reason)


def _file_context(file_id: str) -> str:
    return f"consult.prior_file:{file_id}"


def check_files(files: list[UploadFile]) -> list[tuple[UploadFile, str]]:
    """(file, sniffed content type) of each page; refused before anything is stored."""
    limit, max_mb = settings.CONSULT_PRIOR_MAX_FILES, settings.CONSULT_PRIOR_FILE_MAX_MB
    if len(files) > limit:
        raise _upload_invalid(f"最多上传{limit}个文件")
    checked = []
    for f in files:
        sniffed = sniff(f.data[:16])
        if sniffed is None or sniffed[1] not in ALLOWED_TYPES:
            raise _upload_invalid(f"“{f.name[:32] or '文件'}”不是图片或PDF，请上传病历照片或PDF文件")
        if not f.data:
            raise _upload_invalid("文件为空，请重新选择")
        if len(f.data) > max_mb * 1024 * 1024:
            raise _upload_invalid(f"“{f.name[:32] or '文件'}”超过{max_mb}MB，请压缩后再上传")
        checked.append((f, sniffed[1]))
    return checked


def upload(
    *,
    user: User,
    patient_id: int,
    hospital: str,
    visit_date: dt.date,
    diagnosis: str,
    summary: str,
    files: list[UploadFile],
) -> PriorRecord:
    patient = _owned(user, patient_id)
    hospital, diagnosis, summary = hospital.strip(), diagnosis.strip(), summary.strip()
    if not hospital:
        raise Invalid("请填写就诊医院", field="hospital")
    if visit_date > timezone.localdate():
        raise Invalid("就诊日期不能晚于今天", field="visit_date")
    if not diagnosis:
        raise Invalid("请填写既往诊断", field="diagnosis")
    if len(diagnosis) > 500 or len(summary) > HISTORY_MAX:
        raise Invalid("内容过长", field="summary")
    checked = check_files(files)
    root = Path(settings.UPLOAD_ROOT)
    written: list[Path] = []
    meta = []
    try:
        for f, content_type in checked:
            file_id = uuid.uuid4().hex
            relative = Path("consult") / "prior" / str(patient.pk) / file_id
            target = root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            sealed = crypto.encrypt(base64.b64encode(f.data).decode(), context=_file_context(file_id))
            target.write_text(sealed)
            written.append(target)
            meta.append(
                {
                    "id": file_id,
                    "name": f.name[:128],
                    "content_type": content_type,
                    "size": len(f.data),
                    "sha256": hashlib.sha256(f.data).hexdigest(),
                    "path": str(relative),
                }
            )
        with transaction.atomic():
            record = PriorRecord.objects.create(
                patient=patient,
                source=PriorRecord.Source.UPLOAD,
                hospital=hospital[:64],
                visit_date=visit_date,
                diagnosis=diagnosis,
                summary=summary,
                files=meta,
                review=PriorRecord.Review.PENDING,
                uploaded_by=user,
            )
            audit_record(
                action="consult.prior_record_upload",
                actor=user,
                object_type="prior_record",
                object_id=record.public_id,
                detail={"patient": patient.pk, "files": len(meta)},
            )
    except Exception:
        for path in written:  # nothing half-written
            path.unlink(missing_ok=True)
        raise
    return record


def file_fetch(*, user: User, record_id: str, file_id: str) -> tuple[bytes, str, str]:
    """(bytes, content type, name) of one page, for a reader of the record; audited."""
    record = PriorRecord.objects.select_related("patient").filter(public_id=record_id).first()
    page = next((f for f in record.files if f["id"] == file_id), None) if record else None
    if record is None or page is None or not may_read(user, record):
        raise _denied(user, "prior_record", record_id)
    sealed = (Path(settings.UPLOAD_ROOT) / page["path"]).read_text()
    data = base64.b64decode(crypto.decrypt(sealed, context=_file_context(file_id)))
    audit_record(
        action="consult.prior_file_read",
        actor=user,
        object_type="prior_record",
        object_id=record.public_id,
        detail={"file": file_id},
    )
    return data, page["content_type"], page.get("name", "")


# --- review ------------------------------------------------------------------------


def review(*, user: User, record_id: str, decision: str, note: str = "") -> PriorRecord:
    """The doctor of a visit citing the upload accepts or rejects it (audited, no content)."""
    if decision not in (PriorRecord.Review.ACCEPTED, PriorRecord.Review.REJECTED):
        raise Invalid("审核结论只能是采纳或不采纳", field="decision")
    if decision == PriorRecord.Review.REJECTED and not note.strip():
        raise Invalid("不采纳时请说明原因", field="note")
    with transaction.atomic():
        record = PriorRecord.objects.select_for_update().filter(public_id=record_id).first()
        if record is None or not _cited_for(user).filter(prior_record=record).exists():
            refusal = True
        else:
            refusal = False
            if record.source != PriorRecord.Source.UPLOAD:
                raise Invalid("本院记录无需审核", field="decision")
            record.review = decision
            record.review_note = note.strip()[:500]
            record.reviewed_by = user
            record.reviewed_at = timezone.now()
            record.save(update_fields=["review", "review_note", "reviewed_by", "reviewed_at"])
            audit_record(
                action="consult.prior_record_review",
                actor=user,
                object_type="prior_record",
                object_id=record.public_id,
                detail={"decision": decision},
            )
    if refusal:
        raise _denied(user, "prior_record", record_id)
    assert record is not None
    return record
