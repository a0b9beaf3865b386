from __future__ import annotations

import datetime as dt
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyotp
import pytest
from django.test import Client
from django.utils import timezone

from apps.accounts.idcard import make_id_number
from apps.accounts.models import Patient, User
from apps.accounts.roles import TOTP_ROLES, Role
from apps.accounts.services import patient_add, token_issue


class Api:
    """The real HTTP stack (middleware, ninja, error handlers) with JSON helpers."""

    def __init__(self, token: str = "", ip: str = "10.0.0.1") -> None:
        self.client = Client(REMOTE_ADDR=ip)
        self.token = token

    def _headers(self) -> dict[str, str]:
        return {"HTTP_AUTHORIZATION": f"Bearer {self.token}"} if self.token else {}

    def get(self, path: str, **params: Any) -> Any:
        return self.client.get(f"/api/v1{path}", params, **self._headers())

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.client.post(
            f"/api/v1{path}", json.dumps(body or {}), content_type="application/json", **self._headers()
        )

    def patch(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.client.patch(
            f"/api/v1{path}", json.dumps(body or {}), content_type="application/json", **self._headers()
        )

    def delete(self, path: str) -> Any:
        return self.client.delete(f"/api/v1{path}", **self._headers())


@dataclass
class Persona:
    user: User
    password: str
    totp_secret: str = ""

    def totp(self) -> str:
        return pyotp.TOTP(self.totp_secret).now()

    def api(self) -> Api:
        return Api(token_issue(user=self.user).raw)


STRONG = "Ward-7-Night!"


def make_staff(role: str, username: str | None = None, password: str = STRONG) -> Persona:
    user = User.objects.create_user(
        username=username or f"{role}_{User.objects.count() + 1}",
        password=password,
        display_name=f"测试{role}",
        role=role,
    )
    user.password_changed_at = timezone.now()
    secret = ""
    if role in TOTP_ROLES:
        secret = pyotp.random_base32()
        user.set_totp_secret(secret)
        user.totp_confirmed_at = timezone.now()  # an enrolled persona (enrolment has its own tests)
    user.save()
    return Persona(user=user, password=password, totp_secret=secret)


_patient_serial = itertools.count()


def add_patient(
    owner: Persona, name: str = "张三", relation: str = "self", birth: dt.date = dt.date(1985, 3, 14)
) -> Patient:
    """A 就诊人 of ``owner`` with a valid, unique ID number (one serial for the whole run)."""
    n = next(_patient_serial)
    return patient_add(
        owner=owner.user,
        name=name,
        id_number=make_id_number("440106", birth + dt.timedelta(days=n // 900), f"{100 + n % 900:03d}"),
        phone="",
        relation=relation,
    )


_session_serial = itertools.count()


def live_session_id() -> int:
    """The id of a live login session (``AuthToken``) of a fresh patient: what a media grant
    signed by a test carries as its ``sid`` (the hub refuses grants of ended sessions)."""
    n = next(_session_serial)
    user = User.objects.create_user(username=f"sid_{n}_{User.objects.count()}", display_name="会话", role=Role.PATIENT)
    return int(token_issue(user=user).token.pk)


def make_patient(phone: str = "13900000001", name: str = "测试患者") -> Persona:
    user = User.objects.create_user(
        username=f"p_{phone[-3:]}x{User.objects.count()}", display_name=name, role=Role.PATIENT
    )
    user.set_phone(phone)
    user.save()
    return Persona(user=user, password="")


@pytest.fixture(autouse=True)
def _fresh_hub_node() -> Iterator[None]:
    """Each test runs its own event loop; the process's hub node belongs to one."""
    from apps.im import realtime as im_realtime
    from hub.realtime import node as node_module

    node_module._node = None
    im_realtime._sends = None
    yield
    node_module._node = None
    im_realtime._sends = None


@pytest.fixture(scope="session", autouse=True)
def _end_lingering_sessions(django_db_setup: Any, django_db_blocker: Any) -> Iterator[None]:
    """Worker threads (the hub's database pool, Playwright's greenlet) keep
    connections of their own that nothing closes; end those idle sessions once
    every test is done, so the test database can be dropped."""
    yield
    from django.db import connection

    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture
def api() -> Api:
    return Api()


@pytest.fixture
def patient(db: Any) -> Persona:
    return make_patient()


@pytest.fixture
def other_patient(db: Any) -> Persona:
    return make_patient("13900000002", "另一患者")


@pytest.fixture
def doctor(db: Any) -> Persona:
    return make_staff(Role.DOCTOR, "doc")


@pytest.fixture
def nurse(db: Any) -> Persona:
    return make_staff(Role.NURSE, "nurse1")


@pytest.fixture
def sysadmin(db: Any) -> Persona:
    return make_staff(Role.SYSADMIN, "sys")


@pytest.fixture
def secadmin(db: Any) -> Persona:
    return make_staff(Role.SECADMIN, "sec")


@pytest.fixture
def auditor(db: Any) -> Persona:
    return make_staff(Role.AUDITOR, "aud")
