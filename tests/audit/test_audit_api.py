"""The auditor's audit log API: labelled rows, search, time range, export, refusals."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook

from apps.accounts.models import Patient
from apps.accounts.roles import Role
from apps.accounts.services import patient_add
from apps.audit import services as audit_services
from apps.audit.export import HEADERS
from apps.audit.models import AuditEvent
from apps.audit.services import audit_record, audit_verify_chain
from tests.conftest import STRONG, Api, Persona, make_patient, make_staff

pytestmark = pytest.mark.django_db

BEIJING = ZoneInfo("Asia/Shanghai")
ID_NUMBER = "11010519491231002X"


def _items(client: Api, **params: Any) -> list[dict[str, Any]]:
    r = client.get("/audit/events", limit=100, **params)
    assert r.status_code == 200, r.content
    return r.json()["items"]  # type: ignore[no-any-return]


def _actions(client: Api, **params: Any) -> list[str]:
    return [i["action"] for i in _items(client, **params)]


def _login(api: Api, username: str, password: str = STRONG) -> None:
    api.post("/auth/staff/login", {"username": username, "password": password})


def _patient(name: str = "王小明") -> Patient:
    owner = make_patient("13900000009", "用户0009")
    return patient_add(owner=owner.user, name=name, id_number=ID_NUMBER, phone="", relation="self")


# --- labelled rows ---------------------------------------------------------------------------


def test_a_login_row_is_labelled_in_chinese(api: Api, nurse: Persona, auditor: Persona) -> None:
    _login(api, "nurse1")
    row = next(i for i in _items(auditor.api()) if i["action"] == "auth.login")
    assert row["action_label"] == "登录"
    assert row["result"] == "ok" and row["result_label"] == "成功"
    assert row["actor_label"] == "测试nurse（nurse1）" and row["actor_role_label"] == "护士"
    assert row["object_type"] == "token" and row["object_label"] == f"登录会话 #{row['object_id']}"
    assert "token#" not in str(row)


def test_a_failed_login_shows_the_typed_name_and_labelled_detail(api: Api, auditor: Persona) -> None:
    _login(api, "nobody-here", "Wrong-Pass-1")
    row = next(i for i in _items(auditor.api()) if i["action"] == "auth.login_failed")
    assert row["action_label"] == "登录失败" and row["result_label"] == "失败"
    assert row["actor_label"] == "nobody-here" and row["object_label"] == ""
    assert row["detail_items"] == [{"key": "failures", "label": "连续失败次数", "value": "1"}]


def test_detail_items_never_have_empty_keys_or_values(auditor: Persona) -> None:
    audit_record(action="audit.read", actor=auditor.user, detail={"action": "", "actor": "", "person": "doc"})
    row = next(i for i in _items(auditor.api()) if i["action"] == "audit.read" and i["detail"].get("person") == "doc")
    assert row["detail_items"] == [{"key": "person", "label": "操作人", "value": "doc"}]
    for item in _items(auditor.api()):
        assert all(d["label"] and d["value"] for d in item["detail_items"])


def test_values_that_are_codes_ids_or_times_are_shown_readably(auditor: Persona, nurse: Persona) -> None:
    patient = _patient("王小明")
    audit_record(
        action="admin.role_change",
        actor=auditor.user,
        object_type="user",
        object_id=nurse.user.pk,
        detail={"from": "nurse", "to": "doctor"},
    )
    audit_record(action="consent.grant", actor=auditor.user, object_type="consent", object_id="recording")
    audit_record(
        action="care.relationship_create",
        actor_username="system",
        object_type="care_relationship",
        object_id=7,
        detail={"staff": nurse.user.pk, "patient": patient.pk, "until": "2026-01-01T16:30:00+00:00"},
    )
    rows = {i["action"]: i for i in _items(auditor.api())}
    change = rows["admin.role_change"]
    assert change["object_label"] == "用户 测试nurse（nurse1）"
    assert change["detail_items"] == [
        {"key": "from", "label": "原角色", "value": "护士"},
        {"key": "to", "label": "新角色", "value": "医生"},
    ]
    assert rows["consent.grant"]["object_label"] == "授权：音视频录制"
    care = rows["care.relationship_create"]
    assert care["actor_label"] == "系统（自动任务）" and care["object_label"] == "诊疗关系 #7"
    shown = {d["key"]: d["value"] for d in care["detail_items"]}
    assert shown == {
        "staff": "测试nurse（nurse1）",
        "patient": f"王**（#{patient.pk}）",
        "until": "2026-01-02 00:30:00",
    }
    created = rows["patient.create"]
    assert created["object_label"] == f"就诊人 王**（#{patient.pk}）"
    assert "王小明" not in str(list(rows.values()))  # names of 就诊人 are masked


# --- search ----------------------------------------------------------------------------------


def test_searching_the_chinese_word_finds_login_rows_only(api: Api, nurse: Persona, auditor: Persona) -> None:
    _login(api, "nurse1")
    _login(api, "nurse1", "Wrong-Pass-1")
    _patient()
    audit_record(action="recording.replay", actor=nurse.user, object_type="recording", object_id="abc")
    client = auditor.api()
    client.get("/audit/events")  # an audit.read row, which is not a login
    found = set(_actions(client, action="登录"))
    assert {"auth.login", "auth.login_failed"} <= found
    assert found <= {a for a in found if a.startswith("auth.")}
    assert not found & {"patient.create", "recording.replay", "audit.read"}
    # the code works as well as the label
    assert set(_actions(client, action="auth.login")) == {"auth.login", "auth.login_failed"}
    assert set(_actions(client, action="录像")) == {"recording.replay"}


def test_person_filter_matches_username_or_display_name(api: Api, nurse: Persona, auditor: Persona) -> None:
    doctor = make_staff(Role.DOCTOR, "docwang")
    doctor.user.display_name = "王医生"
    doctor.user.save()
    audit_record(action="psych.sign", actor=doctor.user, object_type="psych_result", object_id=1)
    audit_record(action="im.recall", actor=nurse.user, object_type="message", object_id=2)
    client = auditor.api()
    assert _actions(client, person="docw") == ["psych.sign"]
    assert _actions(client, person="王医生") == ["psych.sign"]
    assert _actions(client, person="nurse1") == ["im.recall"]


def test_patient_filter_by_id_or_name_and_the_read_is_recorded_masked(nurse: Persona, auditor: Persona) -> None:
    patient = _patient("王小明")
    other = patient_add(
        owner=make_patient("13900000008").user, name="李四", id_number="110105198001011238", phone="", relation="self"
    )
    audit_record(action="psych.assign", actor=nurse.user, object_type="patient", object_id=patient.pk)
    audit_record(
        action="care.relationship_end",
        actor=nurse.user,
        object_type="care_relationship",
        object_id=3,
        detail={"patient": patient.pk, "staff": nurse.user.pk},
    )
    audit_record(action="psych.assign", actor=nurse.user, object_type="patient", object_id=other.pk)
    client = auditor.api()
    by_id = _items(client, patient=str(patient.pk))
    assert sorted(i["action"] for i in by_id) == ["care.relationship_end", "patient.create", "psych.assign"]
    assert len(_items(client, patient=f"#{patient.pk}")) == 3
    assert sorted(i["action"] for i in _items(client, patient="小明")) == sorted(i["action"] for i in by_id)
    assert [i["object_id"] for i in _items(client, patient="李四") if i["action"] == "psych.assign"] == [str(other.pk)]
    reads = AuditEvent.objects.filter(action="audit.read").order_by("id")
    assert [r.detail.get("patient_query") for r in reads][-2:] == ["小*", "李*"]
    assert _items(client, patient="无此人") == []
    assert _items(client, patient="999999") == []
    assert "王小明" not in repr(list(AuditEvent.objects.values("detail")))


def test_result_filter_and_invalid_values(api: Api, nurse: Persona, auditor: Persona) -> None:
    _login(api, "nurse1", "Wrong-Pass-1")
    audit_record(action="access.denied", actor=nurse.user, result="denied", detail={"path": "/api/v1/x"})
    client = auditor.api()
    assert set(_actions(client, result="failed")) == {"auth.login_failed"}
    assert set(_actions(client, result="denied")) == {"access.denied"}
    r = client.get("/audit/events", result="weird")
    assert r.status_code == 422 and r.json()["code"] == "validation_error"


def _at(monkeypatch: pytest.MonkeyPatch, when: dt.datetime, **kwargs: Any) -> AuditEvent:
    # timezone.now() is UTC: the chain hashes the instant as the database gives it back.
    monkeypatch.setattr(audit_services.timezone, "now", lambda: when.astimezone(dt.UTC))
    try:
        return audit_record(**kwargs)
    finally:
        monkeypatch.undo()


def test_time_range_in_beijing_days(monkeypatch: pytest.MonkeyPatch, nurse: Persona, auditor: Persona) -> None:
    # 23:30 on 1 March and 00:30 on 2 March in Beijing are both 1 March in UTC.
    late = _at(monkeypatch, dt.datetime(2026, 3, 1, 23, 30, tzinfo=BEIJING), action="im.recall", actor=nurse.user)
    early = _at(monkeypatch, dt.datetime(2026, 3, 2, 0, 30, tzinfo=BEIJING), action="im.recall", actor=nurse.user)
    assert audit_verify_chain().ok
    client = auditor.api()
    day2 = {"since": "2026-03-02T00:00:00+08:00", "until": "2026-03-03T00:00:00+08:00"}
    assert [i["id"] for i in _items(client, action="im.recall", **day2)] == [early.id]
    day1 = {"since": "2026-03-01T00:00:00+08:00", "until": "2026-03-02T00:00:00+08:00"}
    assert [i["id"] for i in _items(client, action="im.recall", **day1)] == [late.id]
    # UTC instants and Beijing wall-clock times without an offset mean the same
    assert [i["id"] for i in _items(client, action="im.recall", since="2026-03-01T16:00:00Z")] == [early.id]
    assert [i["id"] for i in _items(client, action="im.recall", until="2026-03-02T00:00:00")] == [late.id]
    # newest first
    assert [i["id"] for i in _items(client, action="im.recall")] == [early.id, late.id]
    r = client.get("/audit/events", since="2026-03-02T00:00:00+08:00", until="2026-03-01T00:00:00+08:00")
    assert r.status_code == 422 and r.json()["code"] == "audit.range_invalid"
    assert r.json()["message"] == "开始时间不能晚于结束时间"


def test_pages_newest_first(nurse: Persona, auditor: Persona) -> None:
    rows = [audit_record(action="im.recall", actor=nurse.user, object_id=i) for i in range(5)]
    client = auditor.api()
    first = client.get("/audit/events", action="im.recall", limit=2, offset=0).json()
    second = client.get("/audit/events", action="im.recall", limit=2, offset=2).json()
    assert first["count"] == 5
    assert [i["id"] for i in first["items"] + second["items"]] == [r.id for r in reversed(rows)][:4]


def test_labels_endpoint_lists_actions_and_results(auditor: Persona) -> None:
    body = auditor.api().get("/audit/labels").json()
    assert {"code": "auth.login", "label": "登录"} in body["actions"]
    assert body["results"] == [
        {"code": "ok", "label": "成功"},
        {"code": "denied", "label": "拒绝"},
        {"code": "failed", "label": "失败"},
    ]
    assert {"code": "patient", "label": "就诊人"} in body["object_types"]


# --- export ----------------------------------------------------------------------------------


def _login_rows(api: Api) -> None:
    _login(api, "nurse1")
    _login(api, "=HYPERLINK(evil)", "Wrong-Pass-1")  # a name typed by anyone, as a formula


def test_export_csv_has_chinese_headers_beijing_times_and_is_audited(
    api: Api, nurse: Persona, auditor: Persona
) -> None:
    _login_rows(api)
    _patient()
    client = auditor.api()
    r = client.get("/audit/events/export", format="csv", action="登录")
    assert r.status_code == 200
    assert r["Content-Type"].startswith("text/csv")
    assert "attachment;" in r["Content-Disposition"] and ".csv" in r["Content-Disposition"]
    text = r.content.decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0] == HEADERS and rows[0][1] == "时间（北京时间）"
    body = rows[1:]
    assert {row[6] for row in body} == {"auth.login", "auth.login_failed"}
    assert {row[5] for row in body} == {"登录", "登录失败"}
    login = next(row for row in body if row[6] == "auth.login")
    event = AuditEvent.objects.get(pk=int(login[0]))
    assert login[1] == event.at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")
    assert login[2] == "测试nurse（nurse1）" and login[4] == "护士" and login[9] == "成功"
    assert login[7] == f"登录会话 #{event.object_id}"
    failed = next(row for row in body if row[6] == "auth.login_failed")
    assert failed[2] == "'=HYPERLINK(evil)" and failed[12] == "连续失败次数：1"
    assert r["X-Audit-Rows"] == str(len(body)) == "2"
    export = AuditEvent.objects.filter(action="audit.export").get()
    assert export.actor_id == auditor.user.pk and export.result == "ok"
    assert export.detail == {"action": "登录", "format": "csv", "rows": 2}
    # the export is in the log the auditor reads, labelled
    row = _items(client, action="导出")[0]
    assert row["action_label"] == "导出审计日志"
    assert {d["label"]: d["value"] for d in row["detail_items"]} == {
        "操作关键词": "登录",
        "导出格式": "CSV",
        "导出条数": "2",
    }
    assert audit_verify_chain().ok


def test_export_xlsx_reads_back_with_openpyxl(api: Api, nurse: Persona, auditor: Persona) -> None:
    _login_rows(api)
    since = dt.datetime.now(BEIJING).replace(hour=0, minute=0, second=0, microsecond=0)
    r = auditor.api().get("/audit/events/export", format="xlsx", action="登录", since=since.isoformat())
    assert r.status_code == 200
    assert r["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    sheet = load_workbook(io.BytesIO(r.content)).active
    assert sheet is not None and sheet.title == "审计日志"
    values = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert values[0] == HEADERS
    assert sorted(v[5] for v in values[1:]) == ["登录", "登录失败"]
    failed = next(v for v in values[1:] if v[6] == "auth.login_failed")
    assert failed[2] == "'=HYPERLINK(evil)"  # text, not a formula
    assert sheet.freeze_panes == "A2"
    export = AuditEvent.objects.get(action="audit.export")
    assert export.detail["format"] == "xlsx" and export.detail["rows"] == 2
    assert export.detail["since"] == since.isoformat()


def test_an_export_over_the_cap_is_refused_and_audited(settings: Any, nurse: Persona, auditor: Persona) -> None:
    settings.AUDIT_EXPORT_MAX_ROWS = 3
    for i in range(4):
        audit_record(action="im.recall", actor=nurse.user, object_id=i)
    client = auditor.api()
    r = client.get("/audit/events/export", format="xlsx", action="im.recall")
    assert r.status_code == 422
    body = r.json()
    assert body["code"] == "audit.export_too_large" and body["detail"] == {"count": 4, "limit": 3}
    assert "超过单次导出上限 3 条" in body["message"]
    refused = AuditEvent.objects.get(action="audit.export")
    assert refused.result == "failed" and refused.detail["count"] == 4
    assert client.get("/audit/events/export", format="csv", action="im.recall", person="nobody").status_code == 200


@pytest.mark.parametrize("role", [Role.SYSADMIN, Role.SECADMIN, Role.DOCTOR, Role.NURSE, Role.PATIENT])
def test_others_are_refused_and_nothing_is_read_or_exported(role: str) -> None:
    who = make_patient() if role == Role.PATIENT else make_staff(role)
    client = who.api()
    audit_record(action="im.recall", object_id=1)
    for path, params in [
        ("/audit/events", {}),
        ("/audit/events/export", {"format": "csv"}),
        ("/audit/events/export", {"format": "xlsx"}),
        ("/audit/labels", {}),
    ]:
        r = client.get(path, **params)
        assert r.status_code == 403, path
        assert r.json()["code"] == "forbidden"
        assert "Content-Disposition" not in r
    assert not AuditEvent.objects.filter(action__in=["audit.read", "audit.export"]).exists()
    # the refusals themselves are on the record (hub.auth.require_roles)
    assert AuditEvent.objects.filter(action="access.denied", actor_id=who.user.pk).count() == 4


def test_without_a_token_the_answer_is_401(api: Api) -> None:
    assert api.get("/audit/events/export").json()["code"] == "auth.unauthenticated"
    assert not AuditEvent.objects.filter(action="audit.export").exists()
