"""Delivery demo content (registered with apps.accounts.demo): 张伟's account gets
a default address and four shipments in different states (one delivered with its
courier route, one in transit, one failed, one waiting at the pharmacy), so the
tracking page and the console's shipments page show something on first sign-in.
Their source is the demo kind ``delivery.demo`` (registered outside production
only). Idempotent: nothing is added once the account has a shipment."""

from __future__ import annotations

import datetime as dt
import secrets

from django.utils import timezone

from apps.accounts.demo import demo_patient
from apps.accounts.models import Patient, User
from apps.accounts.roles import Role

from .models import Address, Shipment, ShipmentEvent
from .sources import ShipDecision, register_source

DEMO_KIND = "delivery.demo"
FAMILY_PHONE = "13800138001"

ROUTE = [
    ("SBX10", "accepted", "快递员已接单，即将上门取件", "医院药房"),
    ("50", "picked_up", "顺丰速运 已收取快件", "医院药房"),
    ("36", "in_transit", "快件离开【越秀营业点】，已在发往【广州中转场】的路上", "广州中转场"),
    ("44", "in_transit", "快件正在派送途中", "天河区派送点"),
    ("80", "delivered", "已签收，感谢使用顺丰，期待再次为您服务", "收件地址"),
]


def register_demo_source() -> None:
    """The demo kind: every demo source may ship to the first patient of the account it names."""

    def can_ship(source_id: str) -> ShipDecision:
        head = source_id.split("-")[0]  # "<patient id>-<n>"
        patient = Patient.objects.filter(pk=int(head), is_active=True).first() if head.isdigit() else None
        return ShipDecision(patient_id=patient.pk) if patient else ShipDecision.refuse("演示单据不存在")

    register_source(DEMO_KIND, can_ship=can_ship)


def seed_delivery_demo() -> str:
    account = demo_patient(FAMILY_PHONE)
    pharmacist = User.objects.filter(username="pharmacist", role=Role.PHARMACIST, is_active=True).first()
    if account is None or Shipment.objects.filter(owner=account).exists():
        return ""
    me = Patient.objects.filter(owner=account, relation=Patient.Relation.SELF, is_active=True).first()
    if me is None:
        return ""
    address = Address.objects.filter(owner=account, is_default=True).first()
    if address is None:
        address = Address(
            owner=account,
            is_default=True,
            province_code="440000",
            province="广东省",
            city_code="440100",
            city="广州市",
            district_code="440106",
            district="天河区",
        )
        address.set_recipient(name=me.name, phone=FAMILY_PHONE, detail="天河路 385 号 1201 室")
        address.save()
    now = timezone.now()
    made = []
    for n, (status, route_len, method) in enumerate(
        [
            (Shipment.Status.DELIVERED, 5, Shipment.Method.COURIER),
            (Shipment.Status.IN_TRANSIT, 3, Shipment.Method.COURIER),
            (Shipment.Status.FAILED, 2, Shipment.Method.COURIER),
            (Shipment.Status.READY_FOR_PICKUP, 0, Shipment.Method.PICKUP),
        ]
    ):
        started = now - dt.timedelta(days=4 - n, hours=3)
        shipment = Shipment(
            number="DS" + secrets.token_hex(10).upper(),
            source_kind=DEMO_KIND,
            source_id=f"{me.pk}-{n + 1}",
            patient=me,
            owner=account,
            method=method,
            courier="sandbox" if method == Shipment.Method.COURIER else "",
            waybill_no=("SBX" + secrets.token_hex(6).upper()) if method == Shipment.Method.COURIER else "",
            status=status,
            created_by=pharmacist,
            created_at=started,
            updated_at=now,
            booked_at=started if method == Shipment.Method.COURIER else None,
            finished_at=now if status == Shipment.Status.DELIVERED else None,
        )
        if method == Shipment.Method.COURIER:
            shipment.copy_recipient_from(address)
        else:
            shipment.set_recipient(name=me.name, phone=FAMILY_PHONE, detail="")
        if status == Shipment.Status.FAILED:
            shipment.exception_reason = "派件不成功：多次联系收件人未果"
        shipment.save()
        route = ROUTE[:route_len]
        if status == Shipment.Status.FAILED:
            route = [*ROUTE[:2], ("70", "failed", "派件不成功：多次联系收件人未果", "天河区派送点")]
        for i, (code, to, text, where) in enumerate(route):
            ShipmentEvent.objects.create(
                shipment=shipment,
                courier="sandbox",
                raw_event_id=f"demo-{shipment.number}-{i}",
                status=to,
                courier_status=code,
                description=text,
                location=where,
                occurred_at=started + dt.timedelta(hours=2 * (i + 1)),
            )
        made.append(Shipment.Status(status).label)
    return f"配送 张伟 有 {len(made)} 个配送单（{'、'.join(made)}）"
