"""Reading the audit log: the auditor's search and the labelled shape of a row
(API page and export alike)."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Q, QuerySet

from apps.accounts.models import ConsentRecord, Patient, User
from apps.accounts.roles import Role
from hub import crypto

from . import labels
from .models import AuditEvent

BEIJING = ZoneInfo("Asia/Shanghai")
# Actor names written by code paths that have no user (``actor_username=...``).
SYSTEM_ACTORS = {"system": "系统（自动任务）", "seed_demo": "系统（演示数据初始化）"}
# A patient account's default display name ("用户" + the phone's last four digits)
# is already what the patient app shows; any other name of a patient is masked.
_DEFAULT_PATIENT_NAME = re.compile(r"^用户\d{4}$")
# How many 就诊人 a name search may expand to (a broad name fragment stays a bounded IN list).
MAX_PATIENT_MATCHES = 1000


@dataclass(frozen=True)
class AuditFilter:
    """The auditor's search. Text fields match loosely (contains); times are an
    instant range ``since <= at < until``."""

    person: str = ""  # actor username or display name
    patient: str = ""  # a 就诊人 id ("12" or "#12") or name
    action: str = ""  # the Chinese label or the code
    result: str = ""  # ok | denied | failed
    since: dt.datetime | None = None
    until: dt.datetime | None = None

    def as_detail(self) -> dict[str, Any]:
        """The filter as an audit detail: only what was set, and never a patient's name
        (a name search is recorded masked)."""
        out: dict[str, Any] = {}
        if self.person:
            out["person"] = self.person
        if self.patient:
            pid = _patient_id(self.patient)
            out["patient_query"] = f"#{pid}" if pid is not None else crypto.mask_name(self.patient)
        if self.action:
            out["action"] = self.action
        if self.result:
            out["result"] = self.result
        if self.since:
            out["since"] = self.since.isoformat()
        if self.until:
            out["until"] = self.until.isoformat()
        return out


def _patient_id(text: str) -> int | None:
    text = text.strip().lstrip("#")
    return int(text) if text.isdigit() else None


def events_matching(f: AuditFilter) -> QuerySet[AuditEvent]:
    """Rows matching the filter, newest first."""
    qs = AuditEvent.objects.all()
    if f.person:
        names = User.objects.filter(display_name__icontains=f.person).values("id")
        qs = qs.filter(Q(actor_username__icontains=f.person) | Q(actor_id__in=names))
    if f.patient:
        # Rows reference a 就诊人 as their object or in their detail (``patient``).
        pid = _patient_id(f.patient)
        if pid is not None:
            ids = [pid]
        else:
            ids = list(
                Patient.objects.filter(name__icontains=f.patient.strip()).values_list("id", flat=True)[
                    :MAX_PATIENT_MATCHES
                ]
            )
        qs = qs.filter(Q(object_type="patient", object_id__in=[str(i) for i in ids]) | Q(detail__patient__in=ids))
    if f.action:
        text = f.action.strip()
        qs = qs.filter(Q(action__in=labels.actions_matching(text)) | Q(action__icontains=text))
    if f.result:
        qs = qs.filter(result=f.result)
    if f.since:
        qs = qs.filter(at__gte=f.since)
    if f.until:
        qs = qs.filter(at__lt=f.until)
    return qs.order_by("-id")


# --- the labelled row ----------------------------------------------------------------------


def beijing(value: dt.datetime) -> str:
    return value.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def _role_label(role: str) -> str:
    return str(Role(role).label) if role in Role.values else role


def _user_name(user: User) -> str:
    """A staff member by name and account; a patient account masked."""
    if user.role == Role.PATIENT:
        name = user.display_name
        return name if _DEFAULT_PATIENT_NAME.match(name) else crypto.mask_name(name)
    return f"{user.display_name}（{user.username}）" if user.display_name else user.username


def _patient_name(patient: Patient) -> str:
    return f"{crypto.mask_name(patient.name)}（#{patient.pk}）"


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


class _Names:
    """The users and 就诊人 a batch of rows refers to, fetched once per batch."""

    def __init__(self, events: list[AuditEvent]) -> None:
        user_ids: set[int] = set()
        patient_ids: set[int] = set()
        for e in events:
            if e.actor_id is not None:
                user_ids.add(e.actor_id)
            oid = _as_int(e.object_id)
            if oid is not None and e.object_type == "user":
                user_ids.add(oid)
            if oid is not None and e.object_type == "patient":
                patient_ids.add(oid)
            if isinstance(e.detail, dict) and e.action != "admin.role_change":
                for key, value in e.detail.items():
                    if key in labels.USER_KEYS and (i := _as_int(value)) is not None:
                        user_ids.add(i)
                    if key in labels.PATIENT_KEYS and (i := _as_int(value)) is not None:
                        patient_ids.add(i)
        self.users = {u.pk: u for u in User.objects.filter(pk__in=user_ids).only("username", "display_name", "role")}
        self.patients = {p.pk: p for p in Patient.objects.filter(pk__in=patient_ids).only("name")}

    def user(self, uid: int) -> str:
        u = self.users.get(uid)
        return _user_name(u) if u is not None else f"用户 #{uid}"

    def patient(self, pid: int) -> str:
        p = self.patients.get(pid)
        return _patient_name(p) if p is not None else f"#{pid}"


def _actor_label(e: AuditEvent, names: _Names) -> str:
    if e.actor_id is not None and e.actor_id in names.users:
        return _user_name(names.users[e.actor_id])
    if e.actor_username in SYSTEM_ACTORS:
        return SYSTEM_ACTORS[e.actor_username]
    if e.actor_username:
        return e.actor_username  # e.g. the name typed at a failed login
    return "未登录用户"


def _object_label(e: AuditEvent, names: _Names) -> str:
    if not e.object_type:
        return ""
    kind = labels.object_type_label(e.object_type)
    oid = e.object_id
    if not oid:
        return kind
    number = _as_int(oid)
    if e.object_type == "patient" and number is not None:
        return f"{kind} {names.patient(number)}"
    if e.object_type == "user" and number is not None:
        u = names.users.get(number)
        return f"{kind} {_user_name(u)}" if u is not None else f"{kind} #{number}"
    if e.object_type == "consent":
        purposes = dict(ConsentRecord.Purpose.choices)
        return f"{kind}：{purposes.get(oid, oid)}"
    if e.object_type == "recording" and number is None:
        return f"{kind} {oid[:8]}"  # a UUID: its head is enough to tell recordings apart
    if number is None:
        return f"{kind} {oid}"
    return f"{kind} #{number}"


def _time_text(value: Any) -> str | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return beijing(dt.datetime.fromtimestamp(value, tz=dt.UTC))
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            return None
        return beijing(parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC))
    return None


def _value_text(action: str, key: str, value: Any, names: _Names) -> str:
    if isinstance(value, list):
        return "、".join(_value_text(action, key, v, names) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, default=str)
    if isinstance(value, bool):
        if key == "ok":
            return "通过" if value else "未通过"
        return "是" if value else "否"
    if key in labels.TIME_KEYS and (text := _time_text(value)) is not None:
        return text
    if (action == "admin.role_change" and key in ("from", "to")) or key == "role":
        return _role_label(str(value))
    number = _as_int(value)
    if key in labels.USER_KEYS and number is not None:
        return names.user(number)
    if key in labels.PATIENT_KEYS and number is not None:
        return names.patient(number)
    if key in ("assignments", "assignment", "conversation", "first_bad_id") and number is not None:
        return f"#{number}"
    if key == "source" and isinstance(value, str) and ":" in value:
        kind, _, ref = value.partition(":")
        return f"{labels.DETAIL_VALUE_LABELS['reason'].get(kind, kind)} #{ref}"
    text = str(value)
    return labels.DETAIL_VALUE_LABELS.get(key, {}).get(text, text)


_KEY_ORDER = {key: (i, key) for i, key in enumerate(labels.DETAIL_KEY_LABELS)}


def _detail_items(e: AuditEvent, names: _Names) -> list[dict[str, str]]:
    if not isinstance(e.detail, dict):
        return [{"key": "detail", "label": "详情", "value": str(e.detail)}] if e.detail else []
    items = []
    # PostgreSQL's jsonb keeps no key order: show them in the label table's order.
    first = {key: (-100 + i, key) for i, key in enumerate(labels.DETAIL_KEY_ORDER_BY_ACTION.get(e.action, ()))}
    for key, value in sorted(
        e.detail.items(), key=lambda kv: first.get(kv[0]) or _KEY_ORDER.get(kv[0], (len(_KEY_ORDER), kv[0]))
    ):
        if value is None or value == "" or value == [] or value == {}:
            continue  # an unset filter or an absent value says nothing
        label = labels.detail_key_label(str(key), e.action) or str(key) or "详情"
        items.append({"key": str(key), "label": label, "value": _value_text(e.action, str(key), value, names)})
    return items


def event_rows(events: list[AuditEvent]) -> list[dict[str, Any]]:
    """The API / export shape of a batch of rows: the stored codes beside their labels."""
    names = _Names(events)
    return [
        {
            "id": e.id,
            "at": e.at,
            "actor_id": e.actor_id,
            "actor_username": e.actor_username,
            "actor_label": _actor_label(e, names),
            "actor_role": e.actor_role,
            "actor_role_label": _role_label(e.actor_role) if e.actor_role else "",
            "ip": e.ip,
            "action": e.action,
            "action_label": labels.action_label(e.action),
            "object_type": e.object_type,
            "object_id": e.object_id,
            "object_label": _object_label(e, names),
            "result": e.result,
            "result_label": labels.result_label(e.result),
            "request_id": e.request_id,
            "detail": e.detail if isinstance(e.detail, dict) else {"detail": e.detail},
            "detail_items": _detail_items(e, names),
        }
        for e in events
    ]


def iter_event_rows(qs: QuerySet[AuditEvent], *, chunk: int = 2000) -> Iterator[dict[str, Any]]:
    """Every row of ``qs`` shaped, a batch of names looked up per ``chunk`` rows."""
    batch: list[AuditEvent] = []
    for event in qs.iterator(chunk_size=chunk):
        batch.append(event)
        if len(batch) >= chunk:
            yield from event_rows(batch)
            batch = []
    if batch:
        yield from event_rows(batch)


def detail_text(items: Iterable[dict[str, str]]) -> str:
    return "；".join(f"{i['label']}：{i['value']}" for i in items)
