"""The auditor's 审计日志 page in Chromium: search "登录" for today, Chinese labels
only (no raw codes), row details, CSV and Excel downloads, and the export itself
on the record."""

from __future__ import annotations

import csv
import io
import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from openpyxl import load_workbook
from playwright.sync_api import expect

from apps.accounts.roles import Role
from apps.audit.export import HEADERS
from apps.audit.models import AuditEvent
from tests.conftest import STRONG, make_staff
from tests.e2e.helpers import console_login

pytestmark = pytest.mark.e2e

RAW = ["auth.login", "auth.", "token#", "audit.read", "audit.export", '"failures"']


def _staff_login(url: str, username: str, password: str) -> None:
    request = urllib.request.Request(
        f"{url}/api/v1/auth/staff/login",
        data=json.dumps({"username": username, "password": password}).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5):
            pass
    except urllib.error.HTTPError as exc:
        assert exc.code == 401  # the wrong password, on purpose


def test_auditor_searches_logins_and_exports(live_server_url: str, page: Any) -> None:
    auditor = make_staff(Role.AUDITOR, "e2eauditor")
    make_staff(Role.NURSE, "e2enurse")
    _staff_login(live_server_url, "e2enurse", STRONG)
    _staff_login(live_server_url, "e2enurse", "Wrong-Pass-1")

    page.set_viewport_size({"width": 1440, "height": 900})
    console_login(page, live_server_url, "e2eauditor", auditor)
    page.click("[data-testid=menu-audit]")
    table = page.locator("[data-testid=audit-table]")
    expect(table).to_contain_text("登录")

    # 今天 from the date picker's shortcuts, then the action keyword
    page.click("[data-testid=audit-range] input >> nth=0")
    page.locator(".el-picker-panel__shortcut", has_text="今天").click()
    page.locator("[data-testid=audit-action] input").fill("登录")
    page.click("[data-testid=audit-query]")
    expect(page.locator("[data-testid=audit-summary]")).to_contain_text("操作“登录”")
    labels = page.locator("[data-testid=audit-action-label]")
    expect(labels.first).to_be_visible()
    shown = set(labels.all_inner_texts())
    assert {"登录", "登录失败"} <= shown and shown <= {"登录", "登录失败", "登录动态验证码通过"}, shown
    text = table.inner_text()
    assert "测试nurse（e2enurse）" in text and "登录会话 #" in text and "成功" in text and "失败" in text
    for raw in RAW:
        assert raw not in text, raw

    # the failed login's detail, as labelled pairs
    failed = page.locator(".el-table__row", has_text="登录失败").first
    failed.locator(".el-table__expand-icon").click()
    detail = page.locator("[data-testid=audit-detail]").first
    expect(detail).to_contain_text("连续失败次数")
    expect(detail).to_contain_text("请求编号")
    expect(page.locator("[data-testid=audit-result-label]").first).to_have_text("成功")
    page.screenshot(path="/tmp/audit-page.png")

    # downloads of the current filter
    with page.expect_download() as info:
        page.click("[data-testid=audit-export-xlsx]")
    download = info.value
    assert download.suggested_filename.endswith(".xlsx") and download.suggested_filename.startswith("审计日志-")
    sheet = load_workbook(io.BytesIO(open(download.path(), "rb").read())).active
    assert sheet is not None
    values = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert values[0] == HEADERS
    assert {"登录", "登录失败"} <= {v[5] for v in values[1:]}

    with page.expect_download() as info:
        page.click("[data-testid=audit-export-csv]")
    rows = list(csv.reader(io.StringIO(open(info.value.path(), encoding="utf-8-sig").read())))
    assert rows[0] == HEADERS and len(rows) == len(values)

    # both exports are on the record, with the filter, and shown on the page
    exports = list(AuditEvent.objects.filter(action="audit.export", actor_id=auditor.user.pk).order_by("id"))
    assert [e.detail["format"] for e in exports] == ["xlsx", "csv"]
    assert exports[0].detail["action"] == "登录" and exports[0].detail["rows"] == len(values) - 1
    assert "since" in exports[0].detail and "until" in exports[0].detail
    page.locator("[data-testid=audit-action] input").fill("导出")
    page.click("[data-testid=audit-query]")
    expect(labels.first).to_have_text("导出审计日志")
    expect(table).to_contain_text("导出格式：Excel")
    expect(page.locator("[data-testid=audit-result-label]").first).to_have_text("成功")
    assert "audit.export" not in table.inner_text()
    page.screenshot(path="/tmp/audit-page-export.png")
    assert page.errors == []
