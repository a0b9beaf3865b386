"""Error codes of the care-relationship domain: each code's status and default message, one error type."""

from __future__ import annotations

from enum import StrEnum

from hub.errors import ApiError, ErrorSpec


class CareCode(StrEnum):
    NOT_CLINICAL_STAFF = "care.not_clinical_staff"
    # The same answer whether the conversation exists or the caller is not its clinical staff.
    CONVERSATION_NOT_FOUND = "care.conversation_not_found"
    CONVERSATION_CLOSED = "care.conversation_closed"
    PATIENT_NOT_IN_CONVERSATION = "care.patient_not_in_conversation"
    PATIENT_REQUIRED = "care.patient_required"  # detail: patient_ids to choose from
    UNTIL_INVALID = "care.until_invalid"  # detail: max_days
    RELATIONSHIP_NOT_FOUND = "care.relationship_not_found"
    ALREADY_ENDED = "care.already_ended"


ERRORS: dict[str, ErrorSpec] = {
    CareCode.NOT_CLINICAL_STAFF: ErrorSpec(403, "只有临床医护人员可以建立诊疗关系"),
    CareCode.CONVERSATION_NOT_FOUND: ErrorSpec(404, "会话不存在或您不是该会话的医护成员"),
    CareCode.CONVERSATION_CLOSED: ErrorSpec(409, "该会话已结束，不能再从此会话接诊"),
    CareCode.PATIENT_NOT_IN_CONVERSATION: ErrorSpec(404, "该就诊人不属于此会话中的患者"),
    CareCode.PATIENT_REQUIRED: ErrorSpec(422, "该会话有多位就诊人，请选择要接诊的就诊人"),
    CareCode.UNTIL_INVALID: ErrorSpec(422, "截止时间必须晚于当前时间且在{max_days}天内"),
    CareCode.RELATIONSHIP_NOT_FOUND: ErrorSpec(404, "诊疗关系不存在或无权操作"),
    CareCode.ALREADY_ENDED: ErrorSpec(409, "该诊疗关系已结束"),
}


class CareError(ApiError):
    codes = CareCode
    table = ERRORS
