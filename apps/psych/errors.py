"""Error codes of the scales module: each code's status and default message, one error type."""

from __future__ import annotations

from enum import StrEnum

from hub.errors import ApiError, ErrorSpec


class PsychCode(StrEnum):
    NOT_YOUR_PATIENT = "psych.not_your_patient"
    SCALE_UNKNOWN = "psych.scale_unknown"
    ALREADY_SUBMITTED = "psych.already_submitted"
    ASSIGNMENT_CLOSED = "psych.assignment_closed"  # expired or cancelled: the message names which
    ANSWER_INVALID = "psych.answer_invalid"  # the message is the scale's own explanation
    INCOMPLETE = "psych.incomplete"
    DUE_INVALID = "psych.due_invalid"
    TRANSITION_REFUSED = "psych.transition_refused"
    ALREADY_SIGNED = "psych.already_signed"
    DUTY_DOCTOR_INVALID = "psych.duty_doctor_invalid"
    DUTY_WINDOW_INVALID = "psych.duty_window_invalid"


ERRORS: dict[str, ErrorSpec] = {
    PsychCode.NOT_YOUR_PATIENT: ErrorSpec(403, "该就诊人不是您的患者，无法操作"),
    PsychCode.SCALE_UNKNOWN: ErrorSpec(422, "量表 {scale} 不存在或已停用"),
    PsychCode.ALREADY_SUBMITTED: ErrorSpec(409, "量表已提交，答案不能再修改"),
    PsychCode.ASSIGNMENT_CLOSED: ErrorSpec(409, "该量表已关闭，不能填写"),
    PsychCode.ANSWER_INVALID: ErrorSpec(422, "答案不符合量表要求"),
    PsychCode.INCOMPLETE: ErrorSpec(422, "还有题目未作答"),
    PsychCode.DUE_INVALID: ErrorSpec(422, "截止时间必须晚于当前时间且在90天内"),
    PsychCode.TRANSITION_REFUSED: ErrorSpec(409, "当前状态不能执行该操作"),
    PsychCode.ALREADY_SIGNED: ErrorSpec(409, "报告已签名，不能再修改"),
    PsychCode.DUTY_DOCTOR_INVALID: ErrorSpec(422, "值班医生不存在或不是医生账号"),
    PsychCode.DUTY_WINDOW_INVALID: ErrorSpec(422, "结束时间必须晚于开始时间"),
}


class PsychError(ApiError):
    codes = PsychCode
    table = ERRORS
