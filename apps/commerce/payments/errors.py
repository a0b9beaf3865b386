"""Error codes of the payment gateways (apps.commerce.payments): each code's status and
default message, one error type.

Notify refusals (``NotifyRejected``) and gateway failures (``PaymentsError``) carry these
codes; the notify routes answer the gateway with the provider's own failure body, the
other routes render them through ``hub.errors`` like every app."""

from __future__ import annotations

from enum import StrEnum

from hub.errors import ApiError, ErrorSpec


class PaymentsCode(StrEnum):
    # Asynchronous notifications (and signed gateway answers) refused before anything is recorded.
    BAD_SIGNATURE = "payments.bad_signature"
    UNKNOWN_SERIAL = "payments.unknown_serial"  # detail: serial
    STALE_TIMESTAMP = "payments.stale_timestamp"
    REPLAYED_NONCE = "payments.replayed_nonce"
    DECRYPT_FAILED = "payments.decrypt_failed"
    MALFORMED_NOTIFY = "payments.malformed_notify"
    WRONG_MERCHANT = "payments.wrong_merchant"  # the notice names another merchant / app id
    # Calls to the gateway.
    GATEWAY_ERROR = "payments.gateway_error"  # detail: gateway_code, gateway_status (the gateway refused)
    GATEWAY_UNAVAILABLE = "payments.gateway_unavailable"  # 5xx, connection refused, timeout
    GATEWAY_BAD_RESPONSE = "payments.gateway_bad_response"  # malformed JSON, unsigned or badly signed answer
    BAD_REQUEST = "payments.bad_request"  # detail: field (our own input: order_no, amount)
    # Configuration.
    UNKNOWN_PROVIDER = "payments.unknown_provider"  # detail: provider
    SANDBOX_IN_PRODUCTION = "payments.sandbox_in_production"
    # The sandbox gateway's pay sheet.
    SANDBOX_TRADE_NOT_FOUND = "payments.sandbox_trade_not_found"
    SANDBOX_TRADE_STATE = "payments.sandbox_trade_state"  # detail: state


ERRORS: dict[str, ErrorSpec] = {
    PaymentsCode.BAD_SIGNATURE: ErrorSpec(401, "支付通知签名校验失败"),
    PaymentsCode.UNKNOWN_SERIAL: ErrorSpec(401, "支付平台证书序列号未知"),
    PaymentsCode.STALE_TIMESTAMP: ErrorSpec(401, "支付通知时间戳已过期"),
    PaymentsCode.REPLAYED_NONCE: ErrorSpec(409, "重复的支付通知（随机串已使用）"),
    PaymentsCode.DECRYPT_FAILED: ErrorSpec(400, "支付通知解密失败"),
    PaymentsCode.MALFORMED_NOTIFY: ErrorSpec(400, "支付通知格式不正确"),
    PaymentsCode.WRONG_MERCHANT: ErrorSpec(409, "支付通知的商户号或应用号不符"),
    PaymentsCode.GATEWAY_ERROR: ErrorSpec(502, "支付平台拒绝了请求，请稍后重试或联系客服"),
    PaymentsCode.GATEWAY_UNAVAILABLE: ErrorSpec(503, "支付平台暂时不可用，请稍后重试"),
    PaymentsCode.GATEWAY_BAD_RESPONSE: ErrorSpec(502, "支付平台返回了无法识别的应答"),
    PaymentsCode.BAD_REQUEST: ErrorSpec(422, "支付请求参数不正确"),
    PaymentsCode.UNKNOWN_PROVIDER: ErrorSpec(503, "不支持的支付方式"),
    PaymentsCode.SANDBOX_IN_PRODUCTION: ErrorSpec(503, "生产环境不能使用模拟支付"),
    PaymentsCode.SANDBOX_TRADE_NOT_FOUND: ErrorSpec(404, "支付单不存在或已过期"),
    PaymentsCode.SANDBOX_TRADE_STATE: ErrorSpec(409, "该支付单当前状态不能执行此操作"),
}


class PaymentsError(ApiError):
    codes = PaymentsCode
    table = ERRORS
