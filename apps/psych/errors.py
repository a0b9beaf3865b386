"""Domain errors of the scales module, with stable codes for clients."""

from __future__ import annotations

from hub.errors import ApiError


class PsychError(ApiError):
    pass


def not_your_patient() -> PsychError:
    return PsychError("psych.not_your_patient", "该就诊人不是您的患者，无法操作", status=403)


def scale_unknown(code: str) -> PsychError:
    return PsychError("psych.scale_unknown", f"量表 {code} 不存在或已停用", status=422, detail={"scale": code})


def already_submitted() -> PsychError:
    return PsychError("psych.already_submitted", "量表已提交，答案不能再修改", status=409)


def assignment_closed(status_label: str) -> PsychError:
    return PsychError("psych.assignment_closed", f"该量表{status_label}，不能填写", status=409)


def answer_invalid(message: str, item: int | None) -> PsychError:
    return PsychError("psych.answer_invalid", message, status=422, detail={"item": item})


def incomplete(message: str, item: int | None) -> PsychError:
    return PsychError("psych.incomplete", message, status=422, detail={"first_missing_item": item})


def due_invalid() -> PsychError:
    return PsychError("psych.due_invalid", "截止时间必须晚于当前时间且在90天内", status=422)


def transition_refused(current: str, action: str, current_label: str) -> PsychError:
    return PsychError(
        "psych.transition_refused",
        f"当前状态为“{current_label}”，不能执行该操作",
        status=409,
        detail={"status": current, "action": action},
    )


def already_signed() -> PsychError:
    return PsychError("psych.already_signed", "报告已签名，不能再修改", status=409)
