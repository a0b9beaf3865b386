"""Error codes of orders and payments: each code's status and default message, one error type."""

from __future__ import annotations

from enum import StrEnum

from hub.errors import ApiError, ErrorSpec


class CommerceCode(StrEnum):
    TRANSITION_REFUSED = "commerce.transition_refused"
    ITEM_KIND_UNKNOWN = "commerce.item_kind_unknown"
    ITEM_REFUSED = "commerce.item_refused"  # the owning app refused (e.g. prescription not approved)
    ITEMS_REQUIRED = "commerce.items_required"
    CLIENT_KEY_REUSED = "commerce.client_key_reused"  # same key, different content
    CHANNEL_UNAVAILABLE = "commerce.channel_unavailable"
    PROVIDER_UNAVAILABLE = "commerce.provider_unavailable"
    ORDER_EXPIRED = "commerce.order_expired"
    REFUND_AMOUNT_INVALID = "commerce.refund_amount_invalid"
    REFUND_ITEM_INVALID = "commerce.refund_item_invalid"
    REFUND_SECOND_APPROVER = "commerce.refund_second_approver"
    NOTICE_REFUSED = "commerce.notice_refused"


ERRORS: dict[str, ErrorSpec] = {
    CommerceCode.TRANSITION_REFUSED: ErrorSpec(409, "当前订单状态不能执行该操作"),
    CommerceCode.ITEM_KIND_UNKNOWN: ErrorSpec(422, "不支持的商品类型：{kind}"),
    CommerceCode.ITEM_REFUSED: ErrorSpec(409, "该项目暂不能购买"),
    CommerceCode.ITEMS_REQUIRED: ErrorSpec(422, "请至少选择一项"),
    CommerceCode.CLIENT_KEY_REUSED: ErrorSpec(409, "该下单请求已用于另一笔订单，请刷新后重试"),
    CommerceCode.CHANNEL_UNAVAILABLE: ErrorSpec(422, "不支持该支付方式"),
    CommerceCode.PROVIDER_UNAVAILABLE: ErrorSpec(503, "支付渠道暂时不可用，请稍后重试"),
    CommerceCode.ORDER_EXPIRED: ErrorSpec(409, "订单已超时，请重新下单"),
    CommerceCode.REFUND_AMOUNT_INVALID: ErrorSpec(422, "退款金额须大于0且不超过可退金额{refundable}"),
    CommerceCode.REFUND_ITEM_INVALID: ErrorSpec(422, "所选退款项目不属于该订单或已全部退款"),
    CommerceCode.REFUND_SECOND_APPROVER: ErrorSpec(403, "该笔退款金额较大，需由另一角色的人员复核"),
    CommerceCode.NOTICE_REFUSED: ErrorSpec(400, "支付通知校验未通过"),
}


class CommerceError(ApiError):
    codes = CommerceCode
    table = ERRORS
