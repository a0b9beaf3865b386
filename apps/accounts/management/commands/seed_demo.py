"""A demo hospital: one account per role, a few patients with family members,
and a care team (李医生 and 陈护士 with 张伟's family) with its conversation and
care relationships, so the doctor can assign a scale at once.

Passwords and TOTP secrets are generated here and printed (and kept in
var/demo-credentials.txt, readable by the owner only); none is fixed in code."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pyotp
from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from apps.accounts.demo import demo_patient, demo_username, run_demo_seeders
from apps.accounts.idcard import make_id_number
from apps.accounts.models import ConsentRecord, Patient, StaffProfile, User
from apps.accounts.passwords import generate_password
from apps.accounts.roles import TOTP_ROLES, Role
from apps.audit.services import audit_record

STAFF = [
    ("doctor", "李医生", Role.DOCTOR, "心内科", "主任医师", 18),
    ("pharmacist", "王药师", Role.PHARMACIST, "药学部", "主管药师", 10),
    ("nurse", "陈护士", Role.NURSE, "心内科", "护师", 6),
    ("therapist", "赵治疗师", Role.THERAPIST, "康复医学科", "治疗师", 8),
    ("dietitian", "周营养师", Role.DIETITIAN, "临床营养科", "营养师", 7),
    ("agent", "刘客服", Role.CS_AGENT, "客户服务中心", "", 3),
    ("sysadmin", "系统管理员", Role.SYSADMIN, "信息科", "", 0),
    ("secadmin", "安全管理员", Role.SECADMIN, "信息科", "", 0),
    ("auditor", "审计员", Role.AUDITOR, "审计科", "", 0),
]

# (patient account phone, staff usernames, team title): a care-team conversation
# and a recorded care-plan relationship of each staff member with each 就诊人.
CARE_TEAMS = [("13800138001", ["doctor", "nurse"], "心内科诊疗团队")]

PATIENTS = [
    ("13800138001", "张伟", [("王芳", "spouse", "F"), ("张小明", "child", "M")]),
    ("13800138002", "李娜", [("李建国", "parent", "M")]),
    ("13800138003", "黄敏", []),
]


class Command(BaseCommand):
    help = "Seed the demo hospital (idempotent; --reset issues new passwords)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--reset", action="store_true", help="issue new passwords and TOTP secrets")

    def handle(self, *args: Any, reset: bool = False, **options: Any) -> None:
        creds_file = settings.VAR_DIR / "demo-credentials.txt"
        if User.objects.filter(username="doctor").exists() and not reset:
            with transaction.atomic():
                _seed_care_teams()
                run_demo_seeders()
            if creds_file.exists():
                self.stdout.write(creds_file.read_text())
            else:
                self.stdout.write("demo already seeded; run seed_demo --reset to issue new credentials")
            return
        lines = ["演示账号（仅限本机演示，每次 --reset 重新生成）", ""]
        rng = random.Random()  # noqa: S311 - demo birth dates, not secrets
        with transaction.atomic():
            for username, name, role, dept, title, years in STAFF:
                password = generate_password()
                user = User.objects.filter(username=username).first() or User(username=username)
                user.display_name, user.role, user.is_active = name, role, True
                user.set_password(password)
                user.password_changed_at = timezone.now()
                user.must_change_password = False
                line = f"{Role(role).label:<8} 用户名 {username:<11} 密码 {password}"
                if role in TOTP_ROLES:
                    secret = pyotp.random_base32()
                    user.set_totp_secret(secret)
                    user.totp_confirmed_at = timezone.now()  # demo accounts come enrolled; the secret is printed
                    line += f"  TOTP密钥 {secret}"
                user.save()
                StaffProfile.objects.update_or_create(
                    user=user,
                    defaults={
                        "department": dept,
                        "title": title,
                        "years_of_practice": years,
                        "licence_no": f"11044{rng.randrange(10**9):09d}"
                        if role in {Role.DOCTOR, Role.PHARMACIST, Role.NURSE}
                        else "",
                    },
                )
                lines.append(line)
            for phone, name, family in PATIENTS:
                if demo_patient(phone) is None:
                    user = User.objects.create_user(username=demo_username(), display_name=name, role=Role.PATIENT)
                    user.set_phone(phone)
                    user.save()
                    members = [(name, "self", rng.choice("MF")), *family]
                    for member_name, relation, sex in members:
                        birth = dt.date(rng.randrange(1950, 2015), rng.randrange(1, 13), rng.randrange(1, 29))
                        sex_digit = rng.randrange(1, 10, 2) if sex == "M" else rng.randrange(0, 10, 2)
                        serial = f"{rng.randrange(0, 50):02d}{sex_digit}"
                        patient = Patient(owner=user, name=member_name, relation=relation, sex=sex, birth_date=birth)
                        patient.set_identifiers(
                            id_number=make_id_number("440106", birth, serial), phone=phone if relation == "self" else ""
                        )
                        patient.save()
                    ConsentRecord.objects.create(user=user, purpose=ConsentRecord.Purpose.HEALTH_DATA, granted=True)
                lines.append(f"患者     手机号 {phone}  （演示环境的短信验证码显示在登录页验证码输入框下方）")
            _seed_care_teams()
            lines.append("诊疗团队 李医生、陈护士 负责 张伟 一家（可直接为其分配心理量表）")
            lines.extend(run_demo_seeders())
            audit_record(action="system.seed_demo", actor_username="seed_demo")
        text = "\n".join(lines) + "\n"
        creds_file.write_text(text)
        creds_file.chmod(0o600)
        self.stdout.write(text)


def _seed_care_teams() -> None:
    """Idempotent: one open care-team conversation per team, and one open
    care-plan relationship per staff member and 就诊人 (re-opened if lapsed)."""
    from apps.care_team.models import CareRelationship
    from apps.care_team.services import relationship_open
    from apps.im.models import Conversation, Member
    from apps.im.services import conversation_create, member_add

    for phone, usernames, title in CARE_TEAMS:
        account = demo_patient(phone)
        staff = list(User.objects.filter(username__in=usernames, is_active=True).order_by("id"))
        if account is None or not staff:
            continue
        ref = {"kind": Conversation.Kind.CARE_TEAM, "ref_type": "demo_care_team", "ref_id": phone}
        conv = Conversation.objects.filter(closed_at__isnull=True, **ref).first()
        if conv is None:
            conv = conversation_create(
                members=[(account, Member.Role.PATIENT), *((u, Member.Role.STAFF) for u in staff)],
                title=f"{account.display_name} · {title}",
                **ref,
            )
        names = "、".join(u.display_name for u in staff)
        for user in staff:
            member_add(conversation=conv, user=user, role=Member.Role.STAFF)
            profile = StaffProfile.objects.filter(user=user).first()
            for patient in Patient.objects.filter(owner=account, is_active=True).order_by("id"):
                relationship_open(
                    staff=user,
                    patient=patient,
                    reason=CareRelationship.Reason.CARE_PLAN,
                    source_type="im_conversation",
                    source_id=str(conv.pk),
                    department=profile.department if profile else "",
                    note=f"{title}（{names}）",
                )
