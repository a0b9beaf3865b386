"""The patient's 评价 of an ended visit: the visit's account, once; stars 1-5, tags from a
fixed list, a comment of at most 300 characters (encrypted). The doctor's
``rating_sum`` / ``rating_count`` move in the same transaction (F expressions, so
concurrent ratings of one doctor never lose an update)."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import F

from apps.accounts.models import User
from apps.audit.services import audit_record
from hub.errors import Invalid, NotFound

from .errors import ConsultCode, ConsultError
from .models import DoctorProfile, Rating, Visit

# The tags the patient app offers (frontend/patient/src/pages/consult/consult.js RATING_TAGS).
TAGS = ("解答耐心", "讲解清楚", "回复及时", "态度亲切", "建议实用", "专业可信", "等待较久", "解释不够清楚")
COMMENT_MAX = 300


def rate(*, user: User, visit_id: str, stars: int, tags: list[str], comment: str = "") -> Rating:
    if not 1 <= stars <= 5:
        raise Invalid("请选择1-5星", field="stars")
    if len(set(tags)) != len(tags) or any(t not in TAGS for t in tags):
        raise Invalid("评价标签无效", field="tags")
    comment = comment.strip()
    if len(comment) > COMMENT_MAX:
        raise Invalid(f"评价内容最多{COMMENT_MAX}字", field="comment")
    try:
        with transaction.atomic():
            visit = Visit.objects.select_for_update().filter(public_id=visit_id, account=user).first()
            if visit is None:
                raise NotFound("问诊")
            if visit.status != Visit.Status.ENDED or visit.doctor_id is None:
                raise ConsultError(ConsultCode.NOT_ENDED)
            if Rating.objects.filter(visit=visit).exists():
                raise ConsultError(ConsultCode.ALREADY_RATED)
            rating = Rating.objects.create(visit=visit, stars=stars, tags=list(tags), comment=comment)
            DoctorProfile.objects.filter(pk=visit.doctor_id).update(
                rating_sum=F("rating_sum") + stars, rating_count=F("rating_count") + 1
            )
            audit_record(
                action="consult.visit_rate",
                actor=user,
                object_type="visit",
                object_id=visit.public_id,
                detail={"stars": stars},
            )
    except IntegrityError:  # rated concurrently
        raise ConsultError(ConsultCode.ALREADY_RATED) from None
    return rating
