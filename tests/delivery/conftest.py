"""Delivery test fixtures: a source kind registered by the test (as commerce or
pharmacy will register theirs), stand-in courier servers that check the
courier's signature and record the exact bytes, and a sandbox courier whose
callbacks go through our real HTTP stack (django.test.Client)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from django.test import Client

from apps.accounts.idcard import make_id_number
from apps.accounts.models import ConsentRecord, Patient
from apps.accounts.roles import Role
from apps.accounts.services import consent_set, patient_add
from apps.delivery import couriers, sources
from apps.delivery.couriers.dada import Dada
from apps.delivery.couriers.sandbox import SandboxCourier
from apps.delivery.couriers.sf import SfExpress
from apps.delivery.models import Address
from apps.delivery.services import AddressData, address_create
from tests.conftest import Persona, make_patient, make_staff
from tests.support.logcheck import no_logged_exceptions  # noqa: F401  (autouse)

KIND = "test.rx"
SF_CHECKWORD = "sf-test-checkword-0123456789abcd"
DADA_SECRET = "dada-test-secret"
SANDBOX_CHECKWORD = "sandbox-test-checkword"
PHONE = "13912345678"
RECIPIENT = "张卫国"

# What a prescription holds that a courier must never see.
DIAGNOSIS = "重度抑郁发作"
DRUGS = ["盐酸舍曲林片", "奥氮平片"]
INDICATION = "用于治疗抑郁症"
ITEM_TITLE = "舍曲林 50mg×14片 处方药"


@dataclass
class SourceBook:
    """The test's own source kind: ids -> what the owning app would know."""

    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    delivered: list[sources.ShipmentRef] = field(default_factory=list)
    failed: list[sources.ShipmentRef] = field(default_factory=list)

    def add(
        self,
        source_id: str,
        patient: Patient,
        *,
        methods: tuple[str, ...] = ("courier", "pickup"),
        ok: bool = True,
        reason: str = "",
    ) -> str:
        self.rows[source_id] = {
            "patient_id": patient.pk,
            "methods": methods,
            "ok": ok,
            "reason": reason,
            "diagnosis": DIAGNOSIS,
            "drugs": DRUGS,
            "indication": INDICATION,
            "items": [ITEM_TITLE],
        }
        return source_id

    def can_ship(self, source_id: str) -> sources.ShipDecision:
        row = self.rows.get(source_id)
        if row is None:
            return sources.ShipDecision.refuse("单据不存在")
        if not row["ok"]:
            return sources.ShipDecision.refuse(row["reason"])
        return sources.ShipDecision(patient_id=row["patient_id"], methods=row["methods"])


@pytest.fixture
def test_sources() -> Iterator[SourceBook]:
    reg = SourceBook()
    sources.register_source(KIND, can_ship=reg.can_ship, on_delivered=reg.delivered.append, on_failed=reg.failed.append)
    yield reg
    sources.unregister_source(KIND)


class DjangoTransport(httpx.BaseTransport):
    """httpx requests answered by our own Django app through the test client."""

    def __init__(self) -> None:
        self.client = Client(REMOTE_ADDR="10.9.9.9")
        self.sent: list[bytes] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        self.sent.append(body)
        r = self.client.generic(
            request.method,
            request.url.raw_path.decode(),
            body,
            content_type=request.headers.get("content-type", ""),
        )
        return httpx.Response(r.status_code, content=r.content, headers={"content-type": r.get("Content-Type", "")})


@pytest.fixture
def sandbox(settings: Any) -> Iterator[SandboxCourier]:
    settings.DELIVERY_SANDBOX_STEP_SECONDS = 0
    adapter = SandboxCourier(checkword=SANDBOX_CHECKWORD, transport=DjangoTransport())
    couriers.register_courier("sandbox", lambda: adapter)
    yield adapter
    couriers.unregister_courier("sandbox")


def sf_digest(msg_data: str, timestamp: str, checkword: str) -> str:
    # Written out again from SF's SDK, independently of the adapter under test.
    text = urllib.parse.quote_plus(msg_data + timestamp + checkword)
    return base64.b64encode(hashlib.md5(text.encode("utf-8")).digest()).decode()


@dataclass
class StandIn:
    """A courier's server: checks the signature, answers like the courier, keeps the bytes."""

    requests: list[httpx.Request] = field(default_factory=list)
    refuse: str = ""  # answer with this error code instead

    def bodies(self) -> list[bytes]:
        return [r.content for r in self.requests]


def sf_server(standin: StandIn) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        standin.requests.append(request)
        form = {k: v[0] for k, v in urllib.parse.parse_qs(request.content.decode()).items()}
        if sf_digest(form["msgData"], form["timestamp"], SF_CHECKWORD) != form["msgDigest"]:
            return httpx.Response(200, json={"apiResultCode": "A1002", "apiErrorMsg": "数字签名无效"})
        msg = json.loads(form["msgData"])
        data: dict[str, Any]
        if standin.refuse:
            data = {"success": False, "errorCode": standin.refuse, "errorMsg": "失败"}
        elif form["serviceCode"] == "EXP_RECE_SEARCH_ROUTES":
            routes = [
                {
                    "acceptTime": "2026-12-01 09:00:00",
                    "acceptAddress": "广州市",
                    "remark": "已收取快件",
                    "opCode": "50",
                },
                {
                    "acceptTime": "2026-12-01 15:30:00",
                    "acceptAddress": "广州市",
                    "remark": "正在派送途中",
                    "opCode": "44",
                },
            ]
            data = {
                "success": True,
                "msgData": {"routeResps": [{"mailNo": msg["trackingNumber"][0], "routes": routes}]},
            }
        elif form["serviceCode"] == "EXP_RECE_UPDATE_ORDER":
            data = {"success": True, "msgData": {"orderId": msg["orderId"], "resStatus": 2}}
        else:
            waybills = [{"waybillType": 1, "waybillNo": "SF1234567890123"}]
            data = {
                "success": True,
                "errorCode": "S0000",
                "msgData": {"orderId": msg["orderId"], "waybillNoInfoList": waybills},
            }
        return httpx.Response(
            200, json={"apiResultCode": "A1000", "apiErrorMsg": "", "apiResultData": json.dumps(data)}
        )

    return httpx.MockTransport(handle)


def dada_server(standin: StandIn) -> httpx.MockTransport:
    from apps.delivery.couriers.dada import request_signature

    def handle(request: httpx.Request) -> httpx.Response:
        standin.requests.append(request)
        params = json.loads(request.content)
        if request_signature(params, DADA_SECRET) != params.get("signature"):
            return httpx.Response(200, json={"status": "fail", "code": 2003, "msg": "签名错误"})
        return httpx.Response(200, json={"status": "success", "code": 0, "msg": "成功", "result": {"fee": 8.0}})

    return httpx.MockTransport(handle)


@pytest.fixture
def sf() -> Iterator[tuple[SfExpress, StandIn]]:
    standin = StandIn()
    adapter = SfExpress(
        base_url="https://sfapi.test",
        partner_id="HOSP01",
        checkword=SF_CHECKWORD,
        monthly_card="7551234567",
        transport=sf_server(standin),
    )
    couriers.register_courier("sf", lambda: adapter)
    yield adapter, standin
    couriers.unregister_courier("sf")


@pytest.fixture
def dada() -> Iterator[tuple[Dada, StandIn]]:
    standin = StandIn()
    adapter = Dada(
        base_url="https://dada.test",
        app_key="dk1",
        app_secret=DADA_SECRET,
        source_id="73753",
        shop_no="S1",
        city_code="020",
        callback_url="https://hub.test/api/v1/delivery/callbacks/dada",
        transport=dada_server(standin),
    )
    couriers.register_courier("dada", lambda: adapter)
    yield adapter, standin
    couriers.unregister_courier("dada")


_serial = iter(range(100, 999))


@dataclass
class World:
    pharmacist: Persona
    account: Persona  # the patient account
    me: Patient
    address: Address
    other: Persona  # another patient account


def add_patient(owner: Persona, name: str) -> Patient:
    return patient_add(
        owner=owner.user,
        name=name,
        id_number=make_id_number("440106", dt.date(1980, 1, 2), f"{next(_serial):03d}"),
        phone="",
        relation="self",
    )


def address_data(**over: Any) -> AddressData:
    base = {
        "recipient_name": RECIPIENT,
        "phone": PHONE,
        "province_code": "440000",
        "province": "广东省",
        "city_code": "440100",
        "city": "广州市",
        "district_code": "440106",
        "district": "天河区",
        "detail": "天河路 385 号 1201 室",
        "is_default": False,
    }
    return AddressData(**{**base, **over})


@pytest.fixture
def world(db: Any) -> World:
    pharmacist = make_staff(Role.PHARMACIST, "rx1")
    account = make_patient(PHONE, RECIPIENT)
    me = add_patient(account, RECIPIENT)
    consent_set(user=account.user, purpose=ConsentRecord.Purpose.COURIER_SHARING, granted=True)
    address = address_create(user=account.user, data=address_data())
    other = make_patient("13900000077", "李四")
    add_patient(other, "李四")
    return World(pharmacist=pharmacist, account=account, me=me, address=address, other=other)
