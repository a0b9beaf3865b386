"""Error codes of the delivery module: each code's status and default message, one error type."""

from __future__ import annotations

from enum import StrEnum

from hub.errors import ApiError, ErrorSpec


class DeliveryCode(StrEnum):
    TRANSITION_REFUSED = "delivery.transition_refused"
    SOURCE_UNKNOWN = "delivery.source_unknown"  # no app registered this source kind
    SOURCE_NOT_SHIPPABLE = "delivery.source_not_shippable"  # the owning app said no (the message says why)
    METHOD_NOT_ALLOWED = "delivery.method_not_allowed"  # e.g. 特定全营养 FSMP: pickup only
    ALREADY_SHIPPING = "delivery.already_shipping"
    ADDRESS_REQUIRED = "delivery.address_required"
    ADDRESS_INVALID = "delivery.address_invalid"
    ADDRESS_LIMIT = "delivery.address_limit"
    COURIER_UNKNOWN = "delivery.courier_unknown"
    COURIER_UNAVAILABLE = "delivery.courier_unavailable"  # the courier's API failed or refused the order
    COURIER_CONSENT_MISSING = "delivery.courier_consent_missing"
    PICKUP_CODE_WRONG = "delivery.pickup_code_wrong"
    PICKUP_LOCKED = "delivery.pickup_locked"
    CALLBACK_REJECTED = "delivery.callback_rejected"  # bad signature or malformed body: nothing recorded
    CALLBACK_UNKNOWN_WAYBILL = "delivery.callback_unknown_waybill"
    REASON_REQUIRED = "delivery.reason_required"


ERRORS: dict[str, ErrorSpec] = {
    DeliveryCode.TRANSITION_REFUSED: ErrorSpec(409, "当前状态不能执行该操作"),
    DeliveryCode.SOURCE_UNKNOWN: ErrorSpec(422, "不支持的发货来源：{kind}"),
    DeliveryCode.SOURCE_NOT_SHIPPABLE: ErrorSpec(409, "该单据当前不能发货"),
    DeliveryCode.METHOD_NOT_ALLOWED: ErrorSpec(409, "该单据不支持此配送方式"),
    DeliveryCode.ALREADY_SHIPPING: ErrorSpec(409, "该单据已有进行中的配送"),
    DeliveryCode.ADDRESS_REQUIRED: ErrorSpec(422, "请先选择收货地址"),
    DeliveryCode.ADDRESS_INVALID: ErrorSpec(422, "收货地址填写不完整或格式不正确"),
    DeliveryCode.ADDRESS_LIMIT: ErrorSpec(409, "收货地址最多保存 {limit} 个"),
    DeliveryCode.COURIER_UNKNOWN: ErrorSpec(422, "不支持的快递公司：{courier}"),
    DeliveryCode.COURIER_UNAVAILABLE: ErrorSpec(502, "快递公司暂时无法下单，请稍后重试"),
    DeliveryCode.COURIER_CONSENT_MISSING: ErrorSpec(
        409, "患者尚未同意向快递公司提供收件信息，请改为到院自取或请患者授权"
    ),
    DeliveryCode.PICKUP_CODE_WRONG: ErrorSpec(422, "取件码不正确"),
    DeliveryCode.PICKUP_LOCKED: ErrorSpec(429, "取件码错误次数过多，请 {retry_after_seconds} 秒后再试"),
    DeliveryCode.CALLBACK_REJECTED: ErrorSpec(401, "回调签名校验失败"),
    DeliveryCode.CALLBACK_UNKNOWN_WAYBILL: ErrorSpec(404, "回调的运单不存在"),
    DeliveryCode.REASON_REQUIRED: ErrorSpec(422, "请填写原因"),
}


class DeliveryError(ApiError):
    codes = DeliveryCode
    table = ERRORS
