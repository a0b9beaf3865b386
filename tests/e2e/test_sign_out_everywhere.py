"""Chromium: 退出所有设备 in the console and the patient app, and the security
administrator's 强制下线 (issue 11 finding 11), each confirmed first."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import cache
from playwright.sync_api import expect

from apps.accounts import services as accounts
from apps.accounts.models import AuthToken
from apps.accounts.roles import Role
from tests.conftest import make_patient, make_staff
from tests.e2e.helpers import CONSOLE_DESKTOP, PATIENT_PHONE, console_login, patient_login

pytestmark = pytest.mark.e2e


def _live(user: Any) -> int:
    return AuthToken.objects.filter(user=user, revoked_at__isnull=True).count()


def test_console_account_page_signs_out_every_device(live_server_url: str, browser: Any) -> None:
    nurse = make_staff(Role.NURSE, "nurse_all")
    accounts.token_issue(user=nurse.user)  # another browser
    ctx = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai", **CONSOLE_DESKTOP)
    page = ctx.new_page()
    try:
        console_login(page, live_server_url, "nurse_all", nurse)
        page.goto(f"{live_server_url}/console/#/account")
        page.click("[data-testid=logout-all]")
        box = page.locator(".el-message-box")
        expect(box).to_contain_text("所有设备")
        box.locator(".el-message-box__btns button", has_text="取消").click()
        assert _live(nurse.user) == 2
        page.click("[data-testid=logout-all]")
        page.locator(".el-message-box__btns .el-button--primary").click()
        expect(page.locator("[data-testid=login-submit]")).to_be_visible()
        assert _live(nurse.user) == 0
    finally:
        ctx.close()


def test_secadmin_forces_a_staff_member_off(live_server_url: str, browser: Any) -> None:
    sec = make_staff(Role.SECADMIN, "sec_e2e")
    nurse = make_staff(Role.NURSE, "nurse_off")
    accounts.token_issue(user=nurse.user)
    accounts.token_issue(user=nurse.user)
    ctx = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai", **CONSOLE_DESKTOP)
    page = ctx.new_page()
    try:
        console_login(page, live_server_url, "sec_e2e", sec)
        page.goto(f"{live_server_url}/console/#/admin/users")
        action = page.locator("[data-testid=user-revoke-sessions][data-user=nurse_off]")
        expect(action).to_have_text("强制下线")
        # Not offered on one's own row.
        expect(page.locator("[data-testid=user-revoke-sessions][data-user=sec_e2e]")).to_have_count(0)
        action.click()
        page.locator(".el-message-box__btns .el-button--primary").click()
        expect(page.locator(".el-message--success", has_text="强制下线")).to_contain_text("结束 2 个会话")
        assert _live(nurse.user) == 0
        assert _live(sec.user) == 1
    finally:
        ctx.close()


def test_patient_me_page_signs_out_every_device(live_server_url: str, browser: Any) -> None:
    cache.clear()  # the one-a-minute SMS gate of an earlier run
    phone = "13612340301"
    account = make_patient(phone, "李雷")
    accounts.token_issue(user=account.user)  # the mini-program on another phone
    ctx = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai", **PATIENT_PHONE)
    page = ctx.new_page()
    try:
        patient_login(page, live_server_url, phone)
        page.locator(".uni-tabbar__item", has_text="我的").click()
        button = page.locator("[data-testid=logout-all-button]")
        expect(button).to_contain_text("退出所有设备")
        button.click()
        expect(page.locator(".uni-modal")).to_contain_text("所有设备")
        page.locator(".uni-modal__btn_primary").click()
        expect(page.locator("[data-testid=login-button]")).to_be_visible()
        assert _live(account.user) == 0
    finally:
        ctx.close()
