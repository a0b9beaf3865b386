"""Chinese labels of what the audit log stores as codes: actions, object types,
results, detail keys and the detail values that are codes themselves.

One table for the whole code base: the audit app is a core app and imports no
domain app, so the domain actions (psych, recordings, media) are listed here by
their literal codes. ``tests/audit/test_audit_labels.py`` scans the code base
for every action and object type written and fails when one has no label here."""

from __future__ import annotations

from typing import Any

from .models import AuditEvent

ACTION_LABELS: dict[str, str] = {
    # sign-in and sessions (apps/accounts)
    "auth.login": "登录",
    "auth.totp_enrolment_required": "首次登录需绑定身份验证器",
    "auth.totp_enrolment_start": "生成身份验证器绑定二维码",
    "auth.totp_enrolment_failed": "绑定身份验证器失败（验证码错误）",
    "auth.totp_enrolled": "绑定身份验证器",
    "admin.totp_reset": "重置动态验证码",
    "auth.login_failed": "登录失败",
    "auth.lockout": "登录锁定（连续失败）",
    "auth.mfa_ok": "登录动态验证码通过",
    "auth.mfa_failed": "登录动态验证码错误",
    "auth.otp_failed": "短信验证码登录失败",
    "auth.password_expired": "登录时密码已过期",
    "auth.password_change": "修改密码",
    "auth.logout": "退出登录",
    "auth.logout_all": "退出所有设备",
    "auth.token_revoked": "登录会话失效",
    "access.denied": "越权访问被拒绝",
    # administration (三权分立)
    "admin.denied": "管理操作被拒绝",
    "admin.user_create": "创建用户",
    "admin.user_enable": "启用用户",
    "admin.user_disable": "停用用户",
    "admin.role_change": "变更用户角色",
    "admin.user_unlock": "解除登录锁定",
    "admin.sessions_revoke": "强制下线（结束全部会话）",
    # 就诊人 and consents
    "patient.update": "修改就诊人",
    "patient.create": "添加就诊人",
    "patient.remove": "删除就诊人",
    "patient.list": "查看就诊人列表",
    "consent.grant": "同意授权",
    "consent.withdraw": "撤回授权",
    # the audit log itself
    "audit.read": "查询审计日志",
    "audit.verify": "校验审计日志链",
    "audit.export": "导出审计日志",
    "system.seed_demo": "初始化演示数据",
    # IM
    "im.member_remove": "移出会话成员",
    "im.recall": "撤回消息",
    "im.attachment_read": "查看聊天附件",
    "im.attachment_denied": "查看聊天附件被拒绝",
    # care relationships
    "care.relationship_create": "建立诊疗关系",
    "care.relationship_end": "结束诊疗关系",
    "care.access_denied": "查看患者被拒绝（无诊疗关系）",
    "care.patient_view": "查看患者详情",
    "care.patient_search": "查找患者",
    # media and recordings
    "media.room_grant": "进入音视频问诊房间",
    "recording.start": "开始问诊录像",
    "recording.stop": "停止问诊录像",
    "recording.replay": "回放问诊录像",
    "recording.recovered": "修复中断的录像",
    "recording.dropped": "丢弃无效录像",
    "recording.discarded": "删除未获同意的录像",
    "recording.manifest_invalid": "录像完整性校验失败",
    "recording.legal_hold": "录像设为法律保全",
    "recording.legal_hold_lift": "解除录像法律保全",
    "recording.purge": "到期清除录像",
    # orders and payments (apps/commerce)
    "commerce.checkout": "下单",
    "commerce.paid": "订单支付成功",
    "commerce.paid_late": "已取消订单到账（自动退款）",
    "commerce.cancel": "取消订单",
    "commerce.expire": "订单超时未支付自动取消",
    "commerce.refund_request": "申请退款",
    "commerce.refund_approve_first": "退款初审通过（待复核）",
    "commerce.refund_approve": "退款审核通过",
    "commerce.refund_reject": "驳回退款申请",
    "commerce.refund_retry": "重新发起退款",
    "commerce.refund_failed": "退款失败",
    "commerce.refunded": "退款成功",
    "commerce.order_view": "查看订单",
    "commerce.order_search": "查询订单",
    "commerce.notice_refused": "支付通知被拒绝",
    "commerce.reconcile": "对账",
    "commerce.reconcile_view": "查看对账报告",
    "commerce.receipt_issued": "开具电子票据",
    "commerce.receipt_voided": "电子票据冲红",
    "commerce.receipt_failed": "电子票据开具失败",
    "commerce.receipt_retry": "重新开具电子票据",
    # psychological scales
    "psych.assign": "布置心理测评",
    "psych.submit": "提交心理测评",
    "psych.cancel": "取消心理测评",
    "psych.report_view": "查看心理测评报告",
    "psych.report_print": "打印心理测评报告",
    "psych.sign": "签署心理测评报告",
    "psych.access_denied": "查看心理测评被拒绝",
    "psych.duty_create": "安排心理预警值班",
    # psych alerts: ``psych.alert.<AlertEvent.Action>``
    "psych.alert.raised": "心理危急预警触发",
    "psych.alert.notified": "心理危急预警已通知医生",
    "psych.alert.escalated": "心理危急预警升级至值班医生",
    "psych.alert.no_on_duty": "心理危急预警无值班医生（待重试）",
    "psych.alert.acknowledged": "确认心理危急预警",
    "psych.alert.closed": "关闭心理危急预警",
    # pharmacy: prescriptions, review, allergies, CA signature (apps/pharmacy)
    "pharmacy.prescription_create": "开具处方草稿",
    "pharmacy.prescription_edit": "修改处方草稿",
    "pharmacy.prescription_sign": "医生电子签名处方",
    "pharmacy.prescription_submit": "提交处方审核",
    "pharmacy.prescription_revise": "医生修改处方（原签名作废）",
    "pharmacy.prescription_cancel": "作废处方",
    "pharmacy.prescription_approve": "药师审核通过处方",
    "pharmacy.prescription_reject": "药师驳回处方",
    "pharmacy.prescription_pay": "处方已支付",
    "pharmacy.prescription_dispense": "处方发药",
    "pharmacy.prescription_refund": "处方已退费",
    "pharmacy.delivery_choice": "患者选择取药方式",
    "pharmacy.prescription_expire": "处方超过有效期",
    "pharmacy.prescription_view": "查看处方",
    "pharmacy.review_queue_view": "查看处方审核队列",
    "pharmacy.access_denied": "查看处方被拒绝",
    "pharmacy.allergy_add": "登记过敏史",
    "pharmacy.ca_enrol": "申领电子签名证书（沙箱）",
    # delivery (apps/delivery): shipment steps are ``services.TRANSITION_AUDIT``
    "delivery.create": "创建配送单",
    "delivery.book": "预约快递",
    "delivery.accept": "快递员接单",
    "delivery.pick_up": "快递已揽收",
    "delivery.transit": "快递运输中",
    "delivery.deliver": "快递已签收",
    "delivery.fail": "快递配送失败",
    "delivery.redeliver": "快递重新派送",
    "delivery.return": "快递已退回",
    "delivery.ready": "药品备好待取",
    "delivery.collect": "患者取件（取件码核验通过）",
    "delivery.cancel": "取消配送",
    "delivery.mark_failed": "登记配送异常",
    "delivery.pickup_code_issue": "患者获取取件码",
    "delivery.pickup_code_failed": "取件码核验失败",
    "delivery.pickup_locked": "取件码锁定（连续错误）",
    "delivery.shipment_view": "查看配送单收件信息",
    "delivery.address_create": "新增收货地址",
    "delivery.address_update": "修改收货地址",
    "delivery.address_delete": "删除收货地址",
    # consultations: booking, queue, accepting (apps/consultations)
    "consult.visit_book": "预约问诊",
    "consult.visit_pay": "问诊已支付（进入候诊）",
    "consult.visit_cancel": "取消问诊",
    "consult.visit_reschedule": "问诊改约",
    "consult.visit_take": "医生领取科室排队问诊",
    "consult.visit_accept": "医生确认复诊并接诊",
    "consult.visit_terminate": "医生终止问诊（建议线下就诊）",
    "consult.visit_call": "医生叫号进入问诊",
    "consult.visit_end": "问诊结束",
    "consult.step_up": "接诊前身份再验证通过",
    "consult.step_up_failed": "接诊前身份再验证失败",
    "consult.slot_close": "医生停诊号源",
    "consult.doctor_online": "医生上线接诊",
    "consult.doctor_offline": "医生下线",
    # consultations, clinical parts (apps/consultations: his, prior_records, record, invitations, rating, summary)
    "consult.his_sync": "同步本院既往诊断（HIS）",
    "consult.prior_record_upload": "上传既往病历",
    "consult.prior_record_review": "医生审核既往病历",
    "consult.prior_record_denied": "查看既往病历被拒绝",
    "consult.prior_file_read": "查看既往病历附件",
    "consult.record_edit": "保存问诊病历",
    "consult.record_sign": "医生电子签名问诊病历",
    "consult.record_denied": "访问问诊病历被拒绝",
    "consult.invitation_create": "邀请第三方加入问诊",
    "consult.invitation_redeem": "使用邀请码加入问诊",
    "consult.invitation_wrong_code": "邀请码错误",
    "consult.invitation_expired": "使用已过期的邀请码",
    "consult.participant_remove": "移出问诊参与人",
    "consult.visit_rate": "评价问诊",
    "consult.summary_read": "查看问诊小结",
    "consult.summary_denied": "查看问诊小结被拒绝",
    # timed sessions (apps/timed) and closing a conversation at their end
    "timed.extend": "延长问诊时间",
    "timed.end": "限时会话结束",
    "im.conversation_close": "关闭会话（不再接收新消息）",
    # consultations: the doctor's schedule (apps/consultations/schedule.py)
    "consult.slot_create": "医生新增号源",
    "consult.slot_batch_create": "医生按周模板批量新增号源",
    "consult.slot_capacity": "医生修改号源名额",
}

OBJECT_LABELS: dict[str, str] = {
    "token": "登录会话",
    "user": "用户",
    "patient": "就诊人",
    "consent": "授权",
    "conversation": "会话",
    "im_conversation": "会话",
    "message": "消息",
    "attachment": "聊天附件",
    "care_relationship": "诊疗关系",
    "room": "音视频房间",
    "recording": "问诊录像",
    "commerce_order": "订单",
    "commerce_refund": "退款申请",
    "commerce_receipt": "电子票据",
    "commerce_notice": "支付通知",
    "commerce_reconciliation": "对账报告",
    "psych_assignment": "心理测评任务",
    "psych_result": "心理测评结果",
    "psych_alert": "心理危急预警",
    "psych_duty_shift": "心理预警值班",
    "prescription": "处方",
    "delivery_shipment": "配送单",
    "delivery_address": "收货地址",
    # consultations
    "consult_visit": "问诊",
    "consult_slot": "问诊号源",
    "doctor_profile": "医生主页",
    # consultations, clinical parts
    "visit": "问诊",
    "prior_record": "既往病历",
    "invitation": "问诊邀请",
    "timed_session": "限时会话",
}

RESULT_LABELS: dict[str, str] = {str(value): str(label) for value, label in AuditEvent.Result.choices}

DETAIL_KEY_LABELS: dict[str, str] = {
    "reason": "原因",
    "why": "拒绝原因",
    "method": "登录方式",
    "new_account": "新注册账号",
    "failures": "连续失败次数",
    "until": "截止时间",
    "remaining": "剩余尝试次数",
    "errcode": "平台错误码",
    "role": "角色",
    "from": "原值",
    "to": "通知/升级对象",
    "path": "访问路径",
    "count": "条数",
    "user": "用户",
    "staff": "医护人员",
    "patient": "就诊人",
    "doctor": "医生",
    "source": "来源",
    "via": "进入方式",
    "room": "房间",
    "expires": "授权到期",
    "node": "媒体节点",
    "gap_seconds": "缺失时长（秒）",
    "retain_until": "保存期限",
    "assignments": "测评任务",
    "assignment": "测评任务",
    "scales": "量表",
    "scale": "量表",
    "critical": "危急条目",
    "conversation": "会话",
    "department": "科室",
    "rule": "预警规则",
    "item": "题号",
    "channels": "通知渠道",
    "ok": "校验结果",
    "first_bad_id": "首个异常记录",
    "checked": "已校验条数",
    "patient_id": "就诊人编号",
    "payable_fen": "应付金额（分）",
    "amount_fen": "金额（分）",
    "waivers": "费用减免规则",
    "provider": "支付渠道",
    "transaction_id": "支付流水号",
    "order_no": "订单号",
    "day": "对账日期",
    "differences": "差异条数",
    "code": "错误码",
    "status": "状态",
    # the filters of audit.read / audit.export
    "format": "导出格式",
    "person": "操作人",
    "patient_query": "就诊人条件",
    "action": "操作",
    "actor": "操作人",
    "result": "结果",
    "since": "开始时间",
    "rows": "导出条数",
    "limit": "导出上限",
    # pharmacy
    "version": "处方版本",
    "kind": "处方类别",
    "lines": "药品种数",
    "cert": "签名证书序列号",
    "allergy": "过敏记录",
    "ids": "涉及记录",
    "courier": "快递公司",
    "delivery_method": "配送方式",
    # consultations
    "from_slot": "原号源",
    "to_slot": "新号源",
    "step_up": "身份验证方式",
    "prior_record": "既往诊断记录",
    # consultations, clinical parts
    "found": "医院记录条数",
    "created": "新增条数",
    "files": "附件数",
    "file": "附件",
    "decision": "审核结论",
    "stars": "评分（星）",
    "invite_role": "受邀身份",
    # timed sessions
    "owner": "所属业务",
    "extension_seconds": "延长时长（秒）",
    # consultations: the doctor's schedule
    "visit_kind": "问诊方式",
    "capacity": "名额",
    "capacity_from": "原名额",
    "capacity_to": "新名额",
    "weeks": "周数",
}

# Where a key means something else in one action.
DETAIL_KEY_LABELS_BY_ACTION: dict[str, dict[str, str]] = {
    "admin.role_change": {"from": "原角色", "to": "新角色"},
    "psych.alert.notified": {"to": "通知对象"},
    "psych.alert.escalated": {"to": "升级至"},
    "audit.read": {"action": "操作关键词"},
    "audit.export": {"action": "操作关键词"},
    # consultations
    "consult.visit_book": {"kind": "问诊方式"},
}

# The order of a filter recorded by audit.read / audit.export (others follow the table's order).
FILTER_KEYS = ("action", "person", "patient_query", "result", "since", "until")
DETAIL_KEY_ORDER_BY_ACTION: dict[str, tuple[str, ...]] = {
    "audit.read": FILTER_KEYS,
    "audit.export": ("format", *FILTER_KEYS, "rows", "count", "limit"),
}

# Keys whose value is itself a code; ``role``, ``from`` and ``to`` of a role change
# are roles (their labels come from the accounts app, see ``selectors``).
DETAIL_VALUE_LABELS: dict[str, dict[str, str]] = {
    "reason": {
        "logout": "主动退出",
        "idle_timeout": "长时间未操作",
        "password_changed": "修改了密码",
        "disabled": "账号被停用",
        "role_changed": "角色被变更",
        "logout_all": "退出所有设备",
        "admin_revoked": "被管理员强制下线",
        "not_recording": "节点上已无此录制",
        "node_lost": "媒体节点失联",
        "record.stopped": "录制结束",
        "consent_withdrawn": "患者撤回了录制同意",
        "conversation": "会话接诊",
        "visit": "问诊",
        "care_plan": "诊疗计划",
        "duty": "科室值班",
        # consultations: why a doctor terminated a visit (Visit.TerminateReason)
        "first_visit": "初诊患者，不适合在线复诊",
        "condition_changed": "病情变化，需线下就诊",
        "needs_exam": "需要线下检查",
        "emergency": "病情紧急，请立即线下急诊",
        "other": "其他原因",
        "deadline": "问诊时间已到",
        "doctor": "医生结束问诊",
        "participant_removed": "被医生移出问诊",  # consultations, clinical parts
        # timed sessions: why one ended (and its conversation closed, its recording stopped)
        "ended": "主动结束",
        "terminated": "终止服务",
        "session_ended": "限时会话结束",
    },
    "why": {
        "not_clinical": "不是临床医护人员",
        "not_member": "不是该会话的成员",
        "closed": "会话已结束",
        "not_in_conversation": "就诊人不在该会话中",
    },
    "method": {
        "sms": "短信验证码",
        "weixin": "微信小程序",
        "alipay": "支付宝小程序",
        "GET": "查询",
        "POST": "提交",
        "PUT": "修改",
        "PATCH": "修改",
        "DELETE": "删除",
        # consultations: the identity step-up before accepting
        "password": "登录密码",
        "totp": "动态验证码",
    },
    "channels": {"realtime": "实时推送", "notice": "消息通知"},
    "via": {
        "socket.publish": "实时连接（推流）",
        "socket.play": "实时连接（观看）",
        "socket.leave": "实时连接（离开）",
    },
    "result": RESULT_LABELS,
    "format": {"csv": "CSV", "xlsx": "Excel"},
    "kind": {"western": "西药/中成药处方", "tcm": "中药饮片处方"},
    "source": {"hospital": "医院记录", "patient_reported": "患者自述"},
    "courier": {"sf": "顺丰速运", "dada": "达达快送", "sandbox": "沙箱快递"},
    "delivery_method": {"courier": "快递配送", "pickup": "到院自取"},
    # consultations, clinical parts
    "decision": {"accepted": "采纳", "rejected": "不采纳"},
    "invite_role": {"family": "家属", "interpreter": "翻译", "doctor": "会诊医生"},
    "owner": {"consultation": "在线问诊", "rehab": "康复指导"},
    # consultations: the doctor's schedule
    "visit_kind": {"text": "图文问诊", "video": "视频问诊"},
}

# Detail keys holding an instant (ISO string or epoch seconds): shown in Beijing time.
TIME_KEYS = frozenset({"until", "expires", "retain_until", "since"})
# Detail keys holding a user id / a 就诊人 id: shown as the (masked) name.
USER_KEYS = frozenset({"user", "staff", "doctor", "to"})
PATIENT_KEYS = frozenset({"patient"})


def action_label(code: str) -> str:
    return ACTION_LABELS.get(code, code)


def object_type_label(object_type: str) -> str:
    return OBJECT_LABELS.get(object_type, object_type)


def result_label(result: str) -> str:
    return RESULT_LABELS.get(result, result)


def detail_key_label(key: str, action: str = "") -> str:
    return DETAIL_KEY_LABELS_BY_ACTION.get(action, {}).get(key) or DETAIL_KEY_LABELS.get(key) or key


def actions_matching(text: str) -> list[str]:
    """The action codes whose Chinese label or code contains ``text`` (case-insensitive):
    "登录" finds auth.login, auth.login_failed, auth.logout..."""
    needle = text.strip().lower()
    if not needle:
        return []
    return [code for code, label in ACTION_LABELS.items() if needle in label.lower() or needle in code]


def label_tables() -> dict[str, Any]:
    """What the console shows in its filters (action suggestions, result options)."""
    return {
        "actions": [{"code": c, "label": lbl} for c, lbl in ACTION_LABELS.items()],
        "results": [{"code": c, "label": lbl} for c, lbl in RESULT_LABELS.items()],
        "object_types": [{"code": c, "label": lbl} for c, lbl in OBJECT_LABELS.items()],
    }
