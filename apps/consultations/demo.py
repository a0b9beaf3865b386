"""Consultations demo content (registered with apps.accounts.demo): the departments
心血管内科 / 内分泌科 / 呼吸内科 / 儿科, 李医生 as a listed doctor of 心血管内科 with
prices, slots for the next 7 days, hospital (HIS-style) records of 张伟 (so a fresh
demo can book at once) and 李娜, and one visit of 李娜 waiting in 李医生's queue.
Idempotent: each part is added only while it is missing."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from apps.accounts.demo import demo_patient
from apps.accounts.models import Patient, StaffProfile, User
from apps.accounts.roles import Role

from .models import Department, DoctorProfile, PriorRecord, Slot, Visit, VisitKind
from .states import OPEN

# (account phone, 就诊人): a hospital record each; 李娜 also waits in the demo doctor's queue.
DEMO_RECORDS = [("13800138001", "张伟"), ("13800138002", "李娜")]
DEPARTMENTS = [
    ("cardiology", "心血管内科", "高血压、冠心病、心律失常等慢病复诊"),
    ("endocrinology", "内分泌科", "糖尿病、甲状腺疾病复诊"),
    ("respiratory", "呼吸内科", "慢阻肺、哮喘复诊"),
    ("pediatrics", "儿科", "儿童常见病复诊（6岁以下须监护人陪同）"),
]
# (username, department code, title, specialties, text fen, video fen)
DOCTORS = [("doctor", "cardiology", DoctorProfile.Title.CHIEF, "高血压、冠心病长期管理", 3000, 6000)]
SLOT_HOURS = (9, 14)


def seed_consultations() -> str:
    if settings.PRODUCTION:
        return ""
    for i, (code, name, intro) in enumerate(DEPARTMENTS):
        Department.objects.get_or_create(code=code, defaults={"name": name, "intro": intro, "sort": 10 * (i + 1)})
    profiles: list[DoctorProfile] = []
    for username, code, title, specialties, text_fen, video_fen in DOCTORS:
        user = User.objects.filter(username=username, role=Role.DOCTOR, is_active=True).first()
        if user is None:
            continue
        staff, _ = StaffProfile.objects.get_or_create(user=user)
        if not staff.licence_no or staff.years_of_practice < settings.CONSULT_MIN_PRACTICE_YEARS:
            staff.licence_no = staff.licence_no or "110440000000001"
            staff.years_of_practice = max(staff.years_of_practice, 18)
            staff.save(update_fields=["licence_no", "years_of_practice"])
        profile, _ = DoctorProfile.objects.get_or_create(
            user=user,
            defaults={
                "department": Department.objects.get(code=code),
                "title": title,
                "practice_scope": "内科专业",
                "specialties": specialties,
                "intro": "从事心血管内科临床工作多年，擅长慢病的长期随访管理。",
                "price_text_fen": text_fen,
                "price_video_fen": video_fen,
                "is_online": True,
            },
        )
        profiles.append(profile)
    today = timezone.localdate()
    tz = timezone.get_current_timezone()
    made = 0
    for profile in profiles:
        for day in range(7):
            for hour in SLOT_HOURS:
                for kind in (VisitKind.TEXT, VisitKind.VIDEO):
                    start = dt.datetime.combine(today + dt.timedelta(days=day), dt.time(hour), tzinfo=tz)
                    if kind == VisitKind.VIDEO:
                        start += dt.timedelta(hours=2)
                    _, created = Slot.objects.get_or_create(
                        doctor=profile,
                        kind=kind,
                        starts_at=start,
                        defaults={"ends_at": start + dt.timedelta(hours=2), "capacity": 10},
                    )
                    made += int(created)
    records = {name: _his_record(phone, name, today) for phone, name in DEMO_RECORDS}
    me = records.get("张伟")
    lina = records.get("李娜")
    if lina is not None and profiles:
        _waiting_visit(profiles[0], lina)
    if me is None:
        return f"问诊：{len(profiles)} 位医生，新增 {made} 个号源" if profiles else ""
    return f"问诊：{len(DEPARTMENTS)} 个科室、{len(profiles)} 位医生，新增 {made} 个号源，张伟有本院就诊记录可直接预约"


def _his_record(phone: str, name: str, today: dt.date) -> PriorRecord | None:
    account = demo_patient(phone)
    patient = Patient.objects.filter(owner=account, name=name, is_active=True).first() if account else None
    if patient is None:
        return None
    record, _ = PriorRecord.objects.get_or_create(
        patient=patient,
        source=PriorRecord.Source.HIS,
        his_ref=f"DEMO-OP-{patient.pk:06d}",
        defaults={
            "hospital": "本院心血管内科门诊",
            "visit_date": today - dt.timedelta(days=60),
            "icd10_code": "I10",
            "diagnosis": "原发性高血压（2级）",
            "summary": "血压控制尚可，继续氨氯地平 5mg 每日一次，定期复诊。",
            "review": PriorRecord.Review.ACCEPTED,
        },
    )
    return record


def _waiting_visit(doctor: DoctorProfile, record: PriorRecord) -> None:
    """One visit of 李娜 waiting in the demo doctor's queue (张伟 stays free to book)."""
    patient = record.patient
    if Visit.objects.filter(patient=patient, doctor=doctor, status__in=list(OPEN)).exists():
        return
    now = timezone.now()
    slot = (
        Slot.objects.filter(doctor=doctor, kind=VisitKind.TEXT, status=Slot.Status.OPEN, ends_at__gt=now)
        .filter(booked__lt=F("capacity"))
        .order_by("starts_at")
        .first()
    )
    if slot is None or not Slot.objects.filter(pk=slot.pk, booked__lt=F("capacity")).update(booked=F("booked") + 1):
        return
    # Seeded as paid (a demo visit has no order to pay); the real path is booking + commerce.
    Visit.objects.create(
        patient=patient,
        account=patient.owner,
        department=doctor.department,
        doctor=doctor,
        slot=slot,
        kind=VisitKind.TEXT,
        status=Visit.Status.WAITING,
        price_fen=doctor.price_text_fen,
        chief_complaint="高血压复诊，近一周血压波动，想调整用药",
        prior_record=record,
        queued_at=now,
        created_at=now,
        updated_at=now,
    )
