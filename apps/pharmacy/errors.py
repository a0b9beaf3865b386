"""Error codes of the pharmacy domain: each code's status and default message, one error type.

The prescription rules (``rules.py``) each have their own code, so a client can
point at the line or field; a refusal writes nothing."""

from __future__ import annotations

from enum import StrEnum

from hub.errors import ApiError, ErrorSpec


class PharmacyCode(StrEnum):
    TRANSITION_REFUSED = "pharmacy.transition_refused"
    # content rules (R7, R8, 处方管理办法)
    NO_LINES = "pharmacy.no_lines"
    TOO_MANY_DRUGS = "pharmacy.too_many_drugs"  # detail: max
    DUPLICATE_DRUG = "pharmacy.duplicate_drug"  # detail: position, drug
    TCM_PIECES_MIXED = "pharmacy.tcm_pieces_mixed"
    SUPPLY_DAYS_EXCEEDED = "pharmacy.supply_days_exceeded"  # detail: position, days, max_days
    CHRONIC_DAYS_EXCEEDED = "pharmacy.chronic_days_exceeded"  # detail: position, days, max_days
    QUANTITY_EXCEEDS_DAYS = "pharmacy.quantity_exceeds_days"  # detail: position, quantity, max_quantity
    CONTROLLED_DRUG = "pharmacy.controlled_drug"  # detail: position, drug, controlled_class
    DRUG_NOT_ONLINE = "pharmacy.drug_not_online"  # detail: position, drug
    DRUG_UNKNOWN = "pharmacy.drug_unknown"  # detail: position, drug
    FREQUENCY_UNKNOWN = "pharmacy.frequency_unknown"  # detail: position, frequency
    ROUTE_UNKNOWN = "pharmacy.route_unknown"  # detail: position, route
    LINE_INVALID = "pharmacy.line_invalid"  # detail: position, field
    VALID_DAYS_INVALID = "pharmacy.valid_days_invalid"  # detail: max
    DIAGNOSIS_REQUIRED = "pharmacy.diagnosis_required"
    DIAGNOSIS_CODE_INVALID = "pharmacy.diagnosis_code_invalid"
    ALLERGY_CONFLICT = "pharmacy.allergy_conflict"  # detail: position, drug, source
    ALLERGY_SOURCE_UNAVAILABLE = "pharmacy.allergy_source_unavailable"  # detail: source
    GUARDIAN_REQUIRED = "pharmacy.guardian_required"  # detail: age
    GUARDIAN_ID_INVALID = "pharmacy.guardian_id_invalid"
    # signature and gating
    SIGNATURE_INVALID = "pharmacy.signature_invalid"
    CONTENT_CHANGED = "pharmacy.content_changed"
    EXPIRED = "pharmacy.expired"
    NOT_APPROVED = "pharmacy.not_approved"
    NOT_PAID = "pharmacy.not_paid"
    DELIVERY_LOCKED = "pharmacy.delivery_locked"
    OUT_OF_STOCK = "pharmacy.out_of_stock"  # detail: drug_code, stock, needed
    REASON_REQUIRED = "pharmacy.reason_required"
    # the CA adapter (ca.py)
    CA_NO_CERTIFICATE = "pharmacy.ca_no_certificate"
    CA_CERT_EXPIRED = "pharmacy.ca_cert_expired"
    CA_CERT_REVOKED = "pharmacy.ca_cert_revoked"
    CA_PIN_WRONG = "pharmacy.ca_pin_wrong"  # detail: remaining
    CA_PIN_LOCKED = "pharmacy.ca_pin_locked"  # detail: until
    CA_PIN_FORMAT = "pharmacy.ca_pin_format"
    CA_ALREADY_ENROLLED = "pharmacy.ca_already_enrolled"
    CA_UNAVAILABLE = "pharmacy.ca_unavailable"
    CA_SANDBOX_ONLY = "pharmacy.ca_sandbox_only"


ERRORS: dict[str, ErrorSpec] = {
    PharmacyCode.TRANSITION_REFUSED: ErrorSpec(409, "当前处方状态不能执行该操作"),
    PharmacyCode.NO_LINES: ErrorSpec(422, "请至少开具一种药品"),
    PharmacyCode.TOO_MANY_DRUGS: ErrorSpec(422, "西药、中成药处方每张不得超过{max}种药品，请分开开具"),
    PharmacyCode.DUPLICATE_DRUG: ErrorSpec(422, "同一药品在处方中重复开具：{drug}"),
    PharmacyCode.TCM_PIECES_MIXED: ErrorSpec(422, "中药饮片须单独开具处方，不能与西药、中成药等同开一张处方"),
    PharmacyCode.SUPPLY_DAYS_EXCEEDED: ErrorSpec(
        422, "第{position}种药品用药{days}天，超过{max_days}天；慢性病长期处方请填写长期处方理由"
    ),
    PharmacyCode.CHRONIC_DAYS_EXCEEDED: ErrorSpec(422, "第{position}种药品用药{days}天，超过长期处方上限{max_days}天"),
    PharmacyCode.QUANTITY_EXCEEDS_DAYS: ErrorSpec(
        422, "第{position}种药品数量{quantity}超过用药天数所需（最多{max_quantity}）"
    ),
    PharmacyCode.CONTROLLED_DRUG: ErrorSpec(422, "{drug}属于{controlled_label}，互联网医院不得开具"),
    PharmacyCode.DRUG_NOT_ONLINE: ErrorSpec(422, "{drug}不允许线上开具，请线下就诊"),
    PharmacyCode.DRUG_UNKNOWN: ErrorSpec(422, "第{position}种药品不存在或已停用"),
    PharmacyCode.FREQUENCY_UNKNOWN: ErrorSpec(422, "第{position}种药品的用药频次无效"),
    PharmacyCode.ROUTE_UNKNOWN: ErrorSpec(422, "第{position}种药品的给药途径无效"),
    PharmacyCode.LINE_INVALID: ErrorSpec(422, "第{position}种药品的剂量、天数或数量不正确"),
    PharmacyCode.VALID_DAYS_INVALID: ErrorSpec(422, "处方有效期为1至{max}天"),
    PharmacyCode.DIAGNOSIS_REQUIRED: ErrorSpec(422, "请填写临床诊断"),
    PharmacyCode.DIAGNOSIS_CODE_INVALID: ErrorSpec(422, "ICD-10 诊断编码格式不正确（如 I10、E11.9）"),
    PharmacyCode.ALLERGY_CONFLICT: ErrorSpec(422, "就诊人对“{allergen}”过敏（{source_label}），不能开具{drug}"),
    PharmacyCode.ALLERGY_SOURCE_UNAVAILABLE: ErrorSpec(503, "暂时无法读取就诊人过敏史，请稍后再开具"),
    PharmacyCode.GUARDIAN_REQUIRED: ErrorSpec(422, "就诊人未满6周岁，须登记监护人姓名及关系"),
    PharmacyCode.GUARDIAN_ID_INVALID: ErrorSpec(422, "监护人身份证号不正确"),
    PharmacyCode.SIGNATURE_INVALID: ErrorSpec(409, "处方内容与医生电子签名不一致，处方无效"),
    PharmacyCode.CONTENT_CHANGED: ErrorSpec(409, "签名期间处方内容有变化，请核对后重新签名"),
    PharmacyCode.EXPIRED: ErrorSpec(409, "处方已超过有效期"),
    PharmacyCode.NOT_APPROVED: ErrorSpec(409, "处方未经药师审核通过，不能支付"),
    PharmacyCode.NOT_PAID: ErrorSpec(409, "处方尚未支付，不能发药"),
    PharmacyCode.DELIVERY_LOCKED: ErrorSpec(409, "处方已发药或已失效，不能再修改配送方式"),
    PharmacyCode.OUT_OF_STOCK: ErrorSpec(409, "{drug}库存不足（现有{stock}，需要{needed}），暂不能发药"),
    PharmacyCode.REASON_REQUIRED: ErrorSpec(422, "请填写原因"),
    PharmacyCode.CA_NO_CERTIFICATE: ErrorSpec(409, "您还没有有效的电子签名证书，请先申领"),
    PharmacyCode.CA_CERT_EXPIRED: ErrorSpec(409, "电子签名证书已过期，请更新证书后再签名"),
    PharmacyCode.CA_CERT_REVOKED: ErrorSpec(409, "电子签名证书已被吊销，不能签名"),
    PharmacyCode.CA_PIN_WRONG: ErrorSpec(422, "签名密码错误，还可尝试{remaining}次"),
    PharmacyCode.CA_PIN_LOCKED: ErrorSpec(423, "签名密码错误次数过多，证书已锁定，请稍后再试"),
    PharmacyCode.CA_PIN_FORMAT: ErrorSpec(422, "签名密码须为6位数字"),
    PharmacyCode.CA_ALREADY_ENROLLED: ErrorSpec(409, "您已有有效的电子签名证书"),
    PharmacyCode.CA_UNAVAILABLE: ErrorSpec(503, "电子签名服务暂不可用，请稍后重试"),
    PharmacyCode.CA_SANDBOX_ONLY: ErrorSpec(409, "证书须在CA机构申领，本系统不能签发"),
}


class PharmacyError(ApiError):
    codes = PharmacyCode
    table = ERRORS
