"""Errors of the care-relationship domain, with stable codes for clients."""

from __future__ import annotations

from hub.errors import ApiError


class CareError(ApiError):
    pass


def not_clinical_staff() -> CareError:
    return CareError("care.not_clinical_staff", "只有临床医护人员可以建立诊疗关系", status=403)


def conversation_not_found() -> CareError:
    # The same answer whether the conversation exists or the caller is not its clinical staff.
    return CareError("care.conversation_not_found", "会话不存在或您不是该会话的医护成员", status=404)


def conversation_closed() -> CareError:
    return CareError("care.conversation_closed", "该会话已结束，不能再从此会话接诊", status=409)


def patient_not_in_conversation() -> CareError:
    return CareError("care.patient_not_in_conversation", "该就诊人不属于此会话中的患者", status=404)


def patient_required(patient_ids: list[int]) -> CareError:
    return CareError(
        "care.patient_required",
        "该会话有多位就诊人，请选择要接诊的就诊人",
        status=422,
        detail={"patient_ids": patient_ids},
    )


def until_invalid(max_days: int) -> CareError:
    return CareError(
        "care.until_invalid", f"截止时间必须晚于当前时间且在{max_days}天内", status=422, detail={"max_days": max_days}
    )


def relationship_not_found() -> CareError:
    return CareError("care.relationship_not_found", "诊疗关系不存在或无权操作", status=404)


def already_ended() -> CareError:
    return CareError("care.already_ended", "该诊疗关系已结束", status=409)
