"""Error codes of consultations: each code's status and default message, one error type.

A refusal writes nothing (no visit, no order, no slot place, no message)."""

from __future__ import annotations

from enum import StrEnum

from hub.errors import ApiError, ErrorSpec


class ConsultCode(StrEnum):
    TRANSITION_REFUSED = "consult.transition_refused"
    # booking
    SLOT_FULL = "consult.slot_full"
    SLOT_CLOSED = "consult.slot_closed"  # closed, past or not of this doctor / kind
    KIND_NOT_OFFERED = "consult.kind_not_offered"
    DOCTOR_NOT_QUALIFIED = "consult.doctor_not_qualified"  # R5: licence, years of practice
    DOCTOR_UNAVAILABLE = "consult.doctor_unavailable"  # not listed / not in the department
    NO_PRIOR_RECORD = "consult.no_prior_record"  # R1: no diagnosis on file
    PRIOR_RECORD_UNREVIEWED = "consult.prior_record_unreviewed"  # an upload the doctor has not accepted
    GUARDIAN_REQUIRED = "consult.guardian_required"  # R3: under 6
    DUPLICATE_OPEN_VISIT = "consult.duplicate_open_visit"
    CANCEL_TOO_LATE = "consult.cancel_too_late"
    RESCHEDULE_LIMIT = "consult.reschedule_limit"
    # accepting (R1, R4)
    STEP_UP_REQUIRED = "consult.step_up_required"
    STEP_UP_FAILED = "consult.step_up_failed"  # detail: remaining
    STEP_UP_LOCKED = "consult.step_up_locked"
    FOLLOWUP_NOT_CONFIRMED = "consult.followup_not_confirmed"
    NOT_YOUR_VISIT = "consult.not_your_visit"
    # the session and its participants
    EXTENSION_USED = "consult.extension_used"
    INVITATION_EXPIRED = "consult.invitation_expired"
    INVITATION_USED = "consult.invitation_used"
    INVITATION_INVALID = "consult.invitation_invalid"
    RECORD_SIGNED = "consult.record_signed"
    RECORD_INCOMPLETE = "consult.record_incomplete"
    ALREADY_RATED = "consult.already_rated"
    NOT_ENDED = "consult.not_ended"
    HIS_UNAVAILABLE = "consult.his_unavailable"
    UPLOAD_INVALID = "consult.upload_invalid"
    # clinical parts (his, prior records, record, invitations)
    INVITATION_THROTTLED = "consult.invitation_throttled"
    # the doctor's schedule (schedule.py)
    SLOT_IN_PAST = "consult.slot_in_past"
    SLOT_ENDS_BEFORE_START = "consult.slot_ends_before_start"
    SLOT_TOO_LONG = "consult.slot_too_long"
    SLOT_OVERLAP = "consult.slot_overlap"  # detail: conflicts (the new period and the open slot it meets)
    CAPACITY_BELOW_BOOKED = "consult.capacity_below_booked"


ERRORS: dict[str, ErrorSpec] = {
    ConsultCode.TRANSITION_REFUSED: ErrorSpec(409, "问诊当前状态不允许此操作"),
    ConsultCode.SLOT_FULL: ErrorSpec(409, "该时段号源已约满，请选择其他时段"),
    ConsultCode.SLOT_CLOSED: ErrorSpec(409, "该时段已停诊或已过期，请选择其他时段"),
    ConsultCode.KIND_NOT_OFFERED: ErrorSpec(409, "该医生暂未开通此问诊方式"),
    ConsultCode.DOCTOR_NOT_QUALIFIED: ErrorSpec(409, "医生执业资质信息不完整或执业年限不足3年，暂不能开展在线诊疗"),
    ConsultCode.DOCTOR_UNAVAILABLE: ErrorSpec(409, "该医生暂不接受在线问诊"),
    ConsultCode.NO_PRIOR_RECORD: ErrorSpec(
        409, "在线问诊仅限复诊：请先同步本院就诊记录或上传既往病历、出院小结，再预约"
    ),
    ConsultCode.PRIOR_RECORD_UNREVIEWED: ErrorSpec(409, "患者上传的既往病历尚未审核，请先确认病历再接诊"),
    ConsultCode.GUARDIAN_REQUIRED: ErrorSpec(422, "就诊人未满6周岁，须登记陪同的监护人姓名、关系和电话"),
    ConsultCode.DUPLICATE_OPEN_VISIT: ErrorSpec(409, "该就诊人已有一个进行中的同类问诊，请先完成或取消"),
    ConsultCode.CANCEL_TOO_LATE: ErrorSpec(409, "医生已接诊，不能自行取消；如需帮助请联系客服"),
    ConsultCode.RESCHEDULE_LIMIT: ErrorSpec(409, "改约次数已达上限（{max}次）"),
    ConsultCode.STEP_UP_REQUIRED: ErrorSpec(403, "接诊前须再次验证本人身份"),
    ConsultCode.STEP_UP_FAILED: ErrorSpec(422, "身份验证未通过，还可尝试{remaining}次"),
    ConsultCode.STEP_UP_LOCKED: ErrorSpec(423, "身份验证失败次数过多，请15分钟后再试"),
    ConsultCode.FOLLOWUP_NOT_CONFIRMED: ErrorSpec(422, "请先确认本次为复诊"),
    ConsultCode.NOT_YOUR_VISIT: ErrorSpec(403, "这不是您的问诊"),
    ConsultCode.EXTENSION_USED: ErrorSpec(409, "本次问诊已延长过一次，不能再延长"),
    ConsultCode.INVITATION_EXPIRED: ErrorSpec(410, "邀请已过期，请让对方重新邀请"),
    ConsultCode.INVITATION_USED: ErrorSpec(409, "邀请已被使用或已撤销"),
    ConsultCode.INVITATION_INVALID: ErrorSpec(404, "邀请码不正确"),
    ConsultCode.RECORD_SIGNED: ErrorSpec(409, "病历已签名，不能再修改"),
    ConsultCode.RECORD_INCOMPLETE: ErrorSpec(422, "请填写{field}后再签名"),
    ConsultCode.ALREADY_RATED: ErrorSpec(409, "您已评价过本次问诊"),
    ConsultCode.NOT_ENDED: ErrorSpec(409, "问诊结束后才能评价"),
    ConsultCode.HIS_UNAVAILABLE: ErrorSpec(503, "医院信息系统暂时无法连接，请稍后再同步，或上传既往病历"),
    ConsultCode.UPLOAD_INVALID: ErrorSpec(422, "上传的病历不符合要求：{reason}"),
    # clinical parts
    ConsultCode.INVITATION_THROTTLED: ErrorSpec(429, "邀请码错误次数过多，请{minutes}分钟后再试"),
    # the doctor's schedule
    ConsultCode.SLOT_IN_PAST: ErrorSpec(422, "开始时间已过，请选择以后的时间"),
    ConsultCode.SLOT_ENDS_BEFORE_START: ErrorSpec(422, "结束时间须晚于开始时间"),
    ConsultCode.SLOT_TOO_LONG: ErrorSpec(422, "单个时段不能超过{hours}小时，请拆分为多个时段"),
    ConsultCode.SLOT_OVERLAP: ErrorSpec(409, "与已有的同类时段重叠（{count}处），未创建任何时段，请调整时间"),
    ConsultCode.CAPACITY_BELOW_BOOKED: ErrorSpec(409, "该时段已有{booked}人预约，名额不能少于已约人数"),
}


class ConsultError(ApiError):
    codes = ConsultCode
    table = ERRORS
