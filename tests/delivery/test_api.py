"""Who may do and see what: the address book, shipments by role, masking,
the source registry's answers, consent, cancel and exceptions, to-dos, the demo
seeder, and the sandbox never in production."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from apps.accounts.models import ConsentRecord
from apps.accounts.roles import Role
from apps.accounts.services import consent_set
from apps.audit.models import AuditEvent
from apps.delivery import couriers, sources
from apps.delivery.couriers.sandbox import SandboxCourier
from apps.delivery.models import Address, Shipment
from apps.delivery.services import TRANSITION_AUDIT
from apps.delivery.states import SHIPMENT_TRANSITIONS, path_to
from tests.conftest import make_staff

from .conftest import KIND, PHONE, RECIPIENT, SourceBook, World

pytestmark = pytest.mark.django_db

ADDRESS = {
    "recipient_name": "王小二",
    "phone": "13700001111",
    "province_code": "110000",
    "province": "北京市",
    "city_code": "110100",
    "city": "北京市",
    "district_code": "110105",
    "district": "朝阳区",
    "detail": "建国路 88 号",
    "is_default": False,
}


# --- address book ---------------------------------------------------------------------------


def test_address_book_crud_is_per_account_and_encrypted(world: World) -> None:
    api = world.account.api()
    r = api.post("/delivery/addresses", {**ADDRESS, "is_default": True})
    assert r.status_code == 201, r.json()
    new = r.json()
    assert new["is_default"] is True and new["phone"] == "13700001111"
    listed = api.get("/delivery/addresses").json()["items"]
    assert [a["id"] for a in listed] == [new["id"], world.address.pk]  # the default first, only one default
    assert [a["is_default"] for a in listed] == [True, False]
    r = api.patch(f"/delivery/addresses/{new['id']}", {**ADDRESS, "detail": "建国路 99 号"})
    assert r.status_code == 200 and r.json()["detail"] == "建国路 99 号"
    # At rest: ciphertext only.
    with connection.cursor() as cursor:
        cursor.execute("SELECT name_enc, phone_enc, detail_enc FROM delivery_address WHERE id = %s", [new["id"]])
        row = cursor.fetchone()
    assert all(v.startswith("v1:") for v in row)
    assert "王小二" not in str(row) and "13700001111" not in str(row) and "建国路" not in str(row)
    # Another account's id: the same 404 as a missing one, and nothing changed.
    other = world.other.api()
    assert other.patch(f"/delivery/addresses/{new['id']}", ADDRESS).status_code == 404
    assert other.delete(f"/delivery/addresses/{new['id']}").status_code == 404
    assert other.delete("/delivery/addresses/999999").status_code == 404
    assert other.get("/delivery/addresses").json()["items"] == []
    assert api.delete(f"/delivery/addresses/{new['id']}").status_code == 204
    left = api.get("/delivery/addresses").json()["items"]
    assert [(a["id"], a["is_default"]) for a in left] == [(world.address.pk, True)]  # the default moved
    actions = set(AuditEvent.objects.filter(object_type="delivery_address").values_list("action", flat=True))
    assert actions == {"delivery.address_create", "delivery.address_update", "delivery.address_delete"}


def test_a_bad_address_is_refused_with_a_code_and_nothing_written(world: World) -> None:
    api = world.account.api()
    r = api.post("/delivery/addresses", {**ADDRESS, "phone": "12345678901", "district_code": "11010x"})
    assert r.status_code == 422 and r.json()["code"] == "delivery.address_invalid"
    assert set(r.json()["detail"]["fields"]) == {"phone", "district_code"}
    assert Address.objects.filter(owner=world.account.user).count() == 1


def test_staff_have_no_address_book(world: World) -> None:
    assert world.pharmacist.api().get("/delivery/addresses").status_code == 403


# --- sources ------------------------------------------------------------------------------


def test_only_a_registered_source_that_can_ship_gets_a_shipment(world: World, test_sources: SourceBook) -> None:
    api = world.pharmacist.api()
    r = api.post("/delivery/shipments", {"source_kind": "nope.kind", "source_id": "1", "method": "courier"})
    assert r.status_code == 422 and r.json()["code"] == "delivery.source_unknown"
    test_sources.add("unpaid", world.me, ok=False, reason="处方尚未审核通过，不能发货")
    r = api.post("/delivery/shipments", {"source_kind": KIND, "source_id": "unpaid", "method": "courier"})
    assert r.status_code == 409 and r.json()["code"] == "delivery.source_not_shippable"
    assert r.json()["message"] == "处方尚未审核通过，不能发货"
    test_sources.add("fsmp", world.me, methods=("pickup",))  # 特定全营养: pickup only
    r = api.post("/delivery/shipments", {"source_kind": KIND, "source_id": "fsmp", "method": "courier"})
    assert r.status_code == 409 and r.json()["code"] == "delivery.method_not_allowed"
    assert r.json()["message"] == "该单据只能到院自取"
    assert not Shipment.objects.exists()
    assert (
        api.post("/delivery/shipments", {"source_kind": KIND, "source_id": "fsmp", "method": "pickup"}).status_code
        == 201
    )
    # One live shipment per source.
    r = api.post("/delivery/shipments", {"source_kind": KIND, "source_id": "fsmp", "method": "pickup"})
    assert r.status_code == 409 and r.json()["code"] == "delivery.already_shipping"
    assert Shipment.objects.count() == 1


def test_a_source_that_stops_being_shippable_cannot_be_booked(
    world: World, test_sources: SourceBook, sandbox: SandboxCourier
) -> None:
    test_sources.add("rx-r", world.me)
    api = world.pharmacist.api()
    sid = api.post("/delivery/shipments", {"source_kind": KIND, "source_id": "rx-r", "method": "courier"}).json()["id"]
    test_sources.rows["rx-r"].update(ok=False, reason="订单已退款")
    r = api.post(f"/delivery/shipments/{sid}/book", {"courier": "sandbox"})
    assert r.status_code == 409 and r.json()["message"] == "订单已退款"
    assert Shipment.objects.get(pk=sid).status == "created"


def test_register_source_checks_the_kind() -> None:
    with pytest.raises(ValueError):
        sources.register_source("nodot", can_ship=lambda _: sources.ShipDecision())


# --- consent --------------------------------------------------------------------------------


def test_courier_delivery_needs_the_patients_courier_sharing_consent(
    world: World, test_sources: SourceBook, sandbox: SandboxCourier
) -> None:
    test_sources.add("rx-k", world.me)
    api = world.pharmacist.api()
    sid = api.post("/delivery/shipments", {"source_kind": KIND, "source_id": "rx-k", "method": "courier"}).json()["id"]
    consent_set(user=world.account.user, purpose=ConsentRecord.Purpose.COURIER_SHARING, granted=False)
    r = api.post(f"/delivery/shipments/{sid}/book", {"courier": "sandbox"})
    assert r.status_code == 409 and r.json()["code"] == "delivery.courier_consent_missing"
    assert Shipment.objects.get(pk=sid).waybill_no == ""
    test_sources.add("rx-k2", world.me)
    r = api.post("/delivery/shipments", {"source_kind": KIND, "source_id": "rx-k2", "method": "courier"})
    assert r.status_code == 409 and r.json()["code"] == "delivery.courier_consent_missing"
    # Pickup needs no courier consent.
    r = api.post("/delivery/shipments", {"source_kind": KIND, "source_id": "rx-k2", "method": "pickup"})
    assert r.status_code == 201


# --- authorisation and masking --------------------------------------------------------------


def _shipment(world: World, test_sources: SourceBook, source_id: str = "rx-a") -> int:
    test_sources.add(source_id, world.me)
    r = world.pharmacist.api().post(
        "/delivery/shipments", {"source_kind": KIND, "source_id": source_id, "method": "courier"}
    )
    return int(r.json()["id"])


def test_a_patient_sees_only_their_own_shipments(world: World, test_sources: SourceBook) -> None:
    sid = _shipment(world, test_sources)
    mine = world.account.api().get("/delivery/my/shipments").json()
    assert [s["id"] for s in mine["items"]] == [sid]
    assert mine["items"][0]["recipient"] == {
        "name": RECIPIENT,
        "phone": PHONE,
        "region": "广东省广州市天河区",
        "detail": "天河路 385 号 1201 室",
    }
    other = world.other.api()
    assert other.get(f"/delivery/my/shipments/{sid}").status_code == 404
    assert other.get("/delivery/my/shipments/999999").status_code == 404
    assert other.get("/delivery/my/shipments").json()["items"] == []
    assert world.account.api().get(f"/delivery/shipments/{sid}").status_code == 403  # staff routes
    assert (
        world.account.api()
        .post("/delivery/shipments", {"source_kind": KIND, "source_id": "x", "method": "pickup"})
        .status_code
        == 403
    )


def test_staff_roles_and_masking(world: World, test_sources: SourceBook) -> None:
    sid = _shipment(world, test_sources)
    full = world.pharmacist.api().get(f"/delivery/shipments/{sid}").json()
    assert full["recipient"]["name"] == RECIPIENT and full["recipient"]["phone"] == PHONE
    assert AuditEvent.objects.filter(action="delivery.shipment_view", object_id=str(sid)).count() == 1
    sysadmin = make_staff(Role.SYSADMIN, "sys2")
    masked = sysadmin.api().get(f"/delivery/shipments/{sid}").json()
    assert masked["recipient"] == {
        "name": "张**",
        "phone": "139****5678",
        "region": "广东省广州市天河区",
        "detail": "****",
    }
    assert masked["patient_name"] == "张**"
    assert masked["allowed_actions"] == ["book", "cancel"]
    listed = sysadmin.api().get("/delivery/shipments", status="created").json()
    assert listed["count"] == 1 and listed["items"][0]["recipient"]["phone"] == "139****5678"
    for role in (Role.DOCTOR, Role.NURSE, Role.AUDITOR, Role.SECADMIN, Role.CS_AGENT):
        who = make_staff(role, f"u_{role}")
        assert who.api().get(f"/delivery/shipments/{sid}").status_code == 403, role
        assert who.api().get("/delivery/shipments").status_code == 403, role


def test_search_by_number_waybill_and_source(world: World, test_sources: SourceBook) -> None:
    sid = _shipment(world, test_sources)
    _shipment(world, test_sources, "rx-b")
    number = Shipment.objects.get(pk=sid).number
    api = world.pharmacist.api()
    assert [s["id"] for s in api.get("/delivery/shipments", q=number).json()["items"]] == [sid]
    assert [s["id"] for s in api.get("/delivery/shipments", source_kind=KIND, source_id="rx-a").json()["items"]] == [
        sid
    ]
    assert api.get("/delivery/shipments", status="nope").status_code == 422


# --- cancel and exceptions ------------------------------------------------------------------


def test_cancel_before_pickup_and_exceptions_after(
    world: World, test_sources: SourceBook, sandbox: SandboxCourier
) -> None:
    api = world.pharmacist.api()
    sid = _shipment(world, test_sources)
    r = api.post(f"/delivery/shipments/{sid}/cancel", {"reason": "患者改为到院自取"})
    assert r.status_code == 200 and r.json()["status"] == "cancelled" and r.json()["allowed_actions"] == []
    # A cancelled shipment frees its source for a new one.
    sid2 = api.post("/delivery/shipments", {"source_kind": KIND, "source_id": "rx-a", "method": "courier"}).json()["id"]
    api.post(f"/delivery/shipments/{sid2}/book", {"courier": "sandbox"})
    for _ in range(2):
        api.post(f"/delivery/sandbox/shipments/{sid2}/step", {"action": "next"})
    assert Shipment.objects.get(pk=sid2).status == "picked_up"
    r = api.post(f"/delivery/shipments/{sid2}/cancel", {"reason": "晚了"})
    assert r.status_code == 409 and r.json()["code"] == "delivery.transition_refused"
    assert r.json()["message"] == "当前状态为“已揽收”，不能执行该操作"
    r = api.post(f"/delivery/shipments/{sid2}/exception", {"reason": " "})
    assert r.status_code == 422 and r.json()["code"] == "delivery.reason_required"
    r = api.post(f"/delivery/shipments/{sid2}/exception", {"reason": "快件破损"})
    assert r.status_code == 200 and r.json()["status"] == "failed" and r.json()["exception_reason"] == "快件破损"
    assert [x.shipment_id for x in test_sources.failed] == [sid2]


# --- to-dos, demo, production ---------------------------------------------------------------


def test_todos_for_the_pharmacist_and_the_patient(world: World, test_sources: SourceBook) -> None:
    _shipment(world, test_sources)
    test_sources.add("p1", world.me)
    api = world.pharmacist.api()
    pid = api.post("/delivery/shipments", {"source_kind": KIND, "source_id": "p1", "method": "pickup"}).json()["id"]
    api.post(f"/delivery/shipments/{pid}/ready")
    kinds = {t["kind"]: t for t in api.get("/todos/").json()["items"]}
    assert kinds["delivery.to_book"]["count"] == 1 and kinds["delivery.to_book"]["route"] == "delivery-shipments"
    assert kinds["delivery.pickups_waiting"]["count"] == 1
    assert "delivery.failed" not in kinds
    patient = {t["kind"]: t for t in world.account.api().get("/todos/").json()["items"]}
    assert patient["delivery.pickup_ready"]["count"] == 1
    assert "delivery.pickup_ready" not in {t["kind"] for t in world.other.api().get("/todos/").json()["items"]}


def test_every_table_action_has_an_audit_code_with_a_label() -> None:
    from apps.audit.labels import ACTION_LABELS

    assert set(TRANSITION_AUDIT) == {a for _, a in SHIPMENT_TRANSITIONS}
    assert all(code in ACTION_LABELS for code in TRANSITION_AUDIT.values())


def test_path_to_walks_forward_only() -> None:
    assert path_to("booked", "in_transit") == ["accept", "pick_up", "transit"]
    assert path_to("failed", "delivered") == ["redeliver", "deliver"]
    assert path_to("in_transit", "returned") == ["fail", "return"]
    assert path_to("delivered", "in_transit") == []
    assert path_to("in_transit", "accepted") == []
    assert path_to("delivered", "returned") == []  # terminal
    assert path_to("cancelled", "delivered") == []


def test_production_refuses_the_sandbox_courier(settings: Any) -> None:
    settings.PRODUCTION = True
    couriers.register_courier("sandbox", lambda: SandboxCourier(checkword="x", callback_base_url="http://h"))
    try:
        with pytest.raises(ImproperlyConfigured, match="沙箱快递"):
            couriers.courier("sandbox")
    finally:
        couriers.unregister_courier("sandbox")


def test_the_demo_seeder_fills_the_pages(db: Any) -> None:
    from django.core.management import call_command

    call_command("seed_demo", verbosity=0)
    from apps.accounts.demo import demo_patient

    account = demo_patient("13800138001")
    assert account is not None
    statuses = set(Shipment.objects.filter(owner=account).values_list("status", flat=True))
    assert statuses == {"delivered", "in_transit", "failed", "ready_for_pickup"}
    count = Shipment.objects.count()
    call_command("seed_demo", verbosity=0)  # idempotent
    assert Shipment.objects.count() == count


def test_a_shipment_only_goes_to_an_address_of_the_sources_own_patient(world: World, test_sources: SourceBook) -> None:
    from apps.delivery.services import address_create

    from .conftest import address_data

    theirs = address_create(user=world.other.user, data=address_data(recipient_name="李四", phone="13900000077"))
    test_sources.add("rx-x", world.me)
    r = world.pharmacist.api().post(
        "/delivery/shipments", {"source_kind": KIND, "source_id": "rx-x", "method": "courier", "address_id": theirs.pk}
    )
    assert r.status_code == 422 and r.json()["code"] == "delivery.address_required"
    assert not Shipment.objects.exists()
