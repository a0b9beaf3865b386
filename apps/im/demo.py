"""Chat history for the demo (registered with apps.accounts.demo): a few messages
in 张伟's care-team conversation so 消息 has content on first sign-in. Idempotent:
each message has a fixed client id, and a send is idempotent per sender and id."""

from __future__ import annotations

from apps.accounts.demo import demo_patient
from apps.accounts.models import User

from .models import Conversation
from .services import message_send

SCRIPT = [
    ("nurse", "demo-1", "张先生您好，我是心内科陈护士，出院后有任何不适都可以在这里留言。"),
    ("patient", "demo-2", "谢谢陈护士！最近偶尔胸闷，需要复查吗？"),
    ("doctor", "demo-3", "您好，我是李医生。偶发胸闷请先记录发作时间和持续多久，下周一上午可来门诊复查心电图。"),
]


def seed_chat_history() -> str:
    conv = Conversation.objects.filter(ref_type="demo_care_team", ref_id="13800138001", closed_at__isnull=True).first()
    if conv is None:
        return ""
    users = {u.username: u for u in User.objects.filter(username__in={s for s, _, _ in SCRIPT})}
    patient = demo_patient("13800138001")
    if patient is not None:
        users["patient"] = patient
    for sender, client_id, text in SCRIPT:
        if sender in users:
            message_send(
                conversation_id=conv.pk, sender=users[sender], kind="text", body={"text": text}, client_msg_id=client_id
            )
    return ""
