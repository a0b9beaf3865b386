"""The real SF and Dada adapters against stand-in servers: request shape, signature,
answers, and what reaches the courier on the wire (the exact bytes sent).

The source of every shipment here is a prescription-like record holding a
diagnosis, drug names, an indication and item titles: none of them, nor the
recipient's full name or phone, may appear in what the courier receives: the phone
field carries a virtual number bound to it (``apps.delivery.privacy``)."""

from __future__ import annotations

import json
import time
import urllib.parse
from typing import Any

import pytest
from django.test import Client

from apps.core.models import TransitionEvent
from apps.delivery.couriers.base import GOODS_NAME
from apps.delivery.couriers.dada import Dada, callback_signature, request_signature
from apps.delivery.couriers.sf import SfExpress, digest
from apps.delivery.models import Shipment, ShipmentEvent

from .conftest import (
    DADA_SECRET,
    DIAGNOSIS,
    DRUGS,
    INDICATION,
    ITEM_TITLE,
    KIND,
    PHONE,
    RECIPIENT,
    SF_CHECKWORD,
    SourceBook,
    StandIn,
    World,
    sf_digest,
)

pytestmark = pytest.mark.django_db

SECRETS_OF_THE_SOURCE = [DIAGNOSIS, *DRUGS, INDICATION, ITEM_TITLE, "抑郁", "舍曲林", "处方", "prescription", KIND]


def _book(world: World, test_sources: SourceBook, courier: str, source_id: str = "rx-9") -> Any:
    test_sources.add(source_id, world.me)
    api = world.pharmacist.api()
    sid = api.post("/delivery/shipments", {"source_kind": KIND, "source_id": source_id, "method": "courier"}).json()[
        "id"
    ]
    return api.post(f"/delivery/shipments/{sid}/book", {"courier": courier})


def _decoded_views(raw: bytes) -> list[str]:
    """The bytes as sent, and every way a reader could decode them (form, JSON escapes)."""
    text = raw.decode("utf-8")
    views = [text, urllib.parse.unquote_plus(text)]
    for view in list(views):
        try:
            views.append(json.dumps(json.loads(view), ensure_ascii=False))
        except ValueError:
            pass
    return views


def _assert_private(raw: bytes) -> None:
    for view in _decoded_views(raw):
        for secret in SECRETS_OF_THE_SOURCE:
            assert secret not in view, secret
        assert RECIPIENT not in view  # the full name: only 张** is sent
        assert "卫国" not in view


def test_sf_signature_matches_the_published_formula() -> None:
    # base64(md5(quote_plus(msgData + timestamp + checkWord))), as in SF's SDK.
    msg = '{"orderId":"QIAO-20200728-001","language":"zh-CN"}'
    assert digest(msg, "1596000000", "ehpA2SxjBT0M0QY74VktZbPSx41xO9gt") == sf_digest(
        msg, "1596000000", "ehpA2SxjBT0M0QY74VktZbPSx41xO9gt"
    )
    # quote_plus matters: a space and a non-ASCII character change the digest.
    assert digest("a b", "1", "k") != digest("a+b", "1", "k")
    assert digest("收件", "1", "k") == sf_digest("收件", "1", "k")


def test_sf_booking_request_shape_and_privacy(
    world: World, test_sources: SourceBook, sf: tuple[SfExpress, StandIn]
) -> None:
    _, standin = sf
    r = _book(world, test_sources, "sf")
    assert r.status_code == 200, r.json()
    assert r.json()["waybill_no"] == "SF1234567890123" and r.json()["courier_name"] == "顺丰速运"
    (request,) = standin.requests
    assert request.url.path == "/std/service"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    form = {k: v[0] for k, v in urllib.parse.parse_qs(request.content.decode()).items()}
    assert set(form) == {"partnerID", "requestID", "serviceCode", "timestamp", "msgDigest", "msgData"}
    assert form["partnerID"] == "HOSP01" and form["serviceCode"] == "EXP_RECE_CREATE_ORDER"
    assert form["msgDigest"] == sf_digest(form["msgData"], form["timestamp"], SF_CHECKWORD)
    msg = json.loads(form["msgData"])
    shipment = Shipment.objects.get(pk=r.json()["id"])
    assert msg["orderId"] == shipment.number and msg["monthlyCard"] == "7551234567"
    assert msg["cargoDetails"] == [{"name": GOODS_NAME, "count": 1, "unit": "件", "weight": 1.0}]
    sender, recipient = msg["contactInfoList"]
    assert sender["contactType"] == 1 and sender["contact"] == "互联网医院药房"
    assert recipient == {
        "contactType": 2,
        "contact": "张**",
        "mobile": _virtual(shipment.number),
        "country": "CN",
        "province": "广东省",
        "city": "广州市",
        "county": "天河区",
        "address": "天河路 385 号 1201 室",
    }
    # The rider dials a virtual number bound to the recipient's phone; the phone itself is not sent.
    assert PHONE not in request.content.decode()
    assert PHONE[-4:] not in form["msgData"]
    _assert_private(request.content)


def test_sf_refusal_writes_nothing(world: World, test_sources: SourceBook, sf: tuple[SfExpress, StandIn]) -> None:
    _, standin = sf
    standin.refuse = "8016"
    r = _book(world, test_sources, "sf")
    assert r.status_code == 502 and r.json()["code"] == "delivery.courier_unavailable"
    assert r.json()["detail"]["reason"] == "sf.8016"
    shipment = Shipment.objects.get()
    assert shipment.status == "created" and shipment.waybill_no == "" and shipment.courier == ""
    assert not TransitionEvent.objects.filter(object_type="delivery.shipment", action="book").exists()


def test_sf_wrong_checkword_is_refused_by_sf(
    world: World, test_sources: SourceBook, sf: tuple[SfExpress, StandIn]
) -> None:
    adapter, _ = sf
    adapter.checkword = "wrong"
    r = _book(world, test_sources, "sf")
    assert r.status_code == 502 and r.json()["detail"]["reason"] == "sf.A1002"
    assert Shipment.objects.get().status == "created"


def test_sf_route_push_is_verified_and_applied(
    world: World, test_sources: SourceBook, sf: tuple[SfExpress, StandIn]
) -> None:
    sid = _book(world, test_sources, "sf").json()["id"]
    shipment = Shipment.objects.get(pk=sid)
    msg = json.dumps(
        {
            "Body": {
                "WaybillRoute": [
                    {
                        "id": "158918741444476",
                        "mailno": shipment.waybill_no,
                        "orderid": shipment.number,
                        "opCode": "50",
                        "acceptTime": "2026-12-01 10:00:00",
                        "acceptAddress": "广州市",
                        "remark": "顺丰速运 已收取快件",
                        "reasonCode": "",
                        "reasonName": "",
                    }
                ]
            }
        },
        ensure_ascii=False,
    )
    ts = str(int(time.time()))
    form = {
        "partnerID": "HOSP01",
        "requestID": "r1",
        "serviceCode": "RoutePushService",
        "timestamp": ts,
        "msgDigest": sf_digest(msg, ts, SF_CHECKWORD),
        "msgData": msg,
    }
    client = Client()
    body = urllib.parse.urlencode(form)
    r = client.post("/api/v1/delivery/callbacks/sf", body, content_type="application/x-www-form-urlencoded")
    assert r.status_code == 200 and r.json() == {"return_code": "0000", "return_msg": "成功"}
    shipment.refresh_from_db()
    assert shipment.status == "picked_up"
    (event,) = ShipmentEvent.objects.filter(shipment=shipment)
    assert (event.raw_event_id, event.courier_status, event.description) == (
        "158918741444476",
        "50",
        "顺丰速运 已收取快件",
    )
    assert event.occurred_at.isoformat() == "2026-12-01T02:00:00+00:00"  # Beijing 10:00 is 02:00 UTC
    # The sandbox's checkword is not SF's: the same push signed by it is refused.
    form["msgDigest"] = sf_digest(msg, ts, "sandbox-test-checkword")
    r = client.post(
        "/api/v1/delivery/callbacks/sf", urllib.parse.urlencode(form), content_type="application/x-www-form-urlencoded"
    )
    assert r.status_code == 401
    assert ShipmentEvent.objects.filter(shipment=shipment).count() == 1


def test_dada_request_signature_formula() -> None:
    params = {"app_key": "k", "body": '{"a":1}', "format": "json", "source_id": "73753", "timestamp": "1", "v": "1.0"}
    import hashlib

    joined = 'app_keykbody{"a":1}formatjsonsource_id73753timestamp1v1.0'
    assert request_signature(params, "S") == hashlib.md5(f"S{joined}S".encode()).hexdigest().upper()
    assert request_signature({**params, "signature": "ignored"}, "S") == request_signature(params, "S")


def test_dada_booking_request_shape_and_privacy(
    world: World, test_sources: SourceBook, dada: tuple[Dada, StandIn]
) -> None:
    _, standin = dada
    r = _book(world, test_sources, "dada")
    assert r.status_code == 200, r.json()
    shipment = Shipment.objects.get(pk=r.json()["id"])
    assert shipment.waybill_no == shipment.number  # Dada names the order by our origin_id
    (request,) = standin.requests
    assert request.url.path == "/api/order/addOrder" and request.headers["content-type"] == "application/json"
    params = json.loads(request.content)
    assert set(params) == {"app_key", "body", "format", "source_id", "timestamp", "v", "signature"}
    assert params["signature"] == request_signature(params, DADA_SECRET)
    body = json.loads(params["body"])
    assert body["origin_id"] == shipment.number and body["shop_no"] == "S1" and body["city_code"] == "020"
    assert body["receiver_name"] == "张**" and body["receiver_phone"] == _virtual(shipment.number)
    assert body["receiver_address"] == "广东省广州市天河区天河路 385 号 1201 室"
    assert body["info"] == "" and body["product_list"][0]["sku_name"] == GOODS_NAME
    assert PHONE not in request.content.decode()
    _assert_private(request.content)


def _virtual(shipment_number: str) -> str:
    """The number the sandbox privacy provider binds for this shipment (170 range)."""
    from apps.delivery.privacy import SandboxPrivacyNumbers

    number = SandboxPrivacyNumbers().bind(shipment_number=shipment_number, phone=PHONE, days=15)
    assert number.startswith("170") and len(number) == 11 and number != PHONE
    return number


def _dada_callback(order_id: str, status: int, update_time: int, client_id: str = "DD123") -> dict[str, Any]:
    return {
        "client_id": client_id,
        "order_id": order_id,
        "order_status": status,
        "cancel_reason": "",
        "cancel_from": 0,
        "update_time": update_time,
        "signature": callback_signature(client_id, order_id, str(update_time)),
        "dm_id": 500,
        "dm_name": "王骑士",
        "dm_mobile": "15600000000",
    }


def test_dada_callbacks_move_the_shipment_and_bad_ones_do_not(
    world: World, test_sources: SourceBook, dada: tuple[Dada, StandIn]
) -> None:
    sid = _book(world, test_sources, "dada").json()["id"]
    shipment = Shipment.objects.get(pk=sid)
    now = int(time.time())
    client = Client()

    def post(data: dict[str, Any]) -> Any:
        return client.post("/api/v1/delivery/callbacks/dada", json.dumps(data), content_type="application/json")

    forged = {**_dada_callback(shipment.number, 4, now), "signature": "0" * 32}
    assert post(forged).status_code == 401
    stale = _dada_callback(shipment.number, 4, now - 3 * 86400)
    assert post(stale).status_code == 401
    assert post(_dada_callback("DS-NOT-OURS", 4, now)).status_code == 404
    assert ShipmentEvent.objects.filter(shipment=shipment).count() == 0

    r = post(_dada_callback(shipment.number, 2, now - 60))
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    r = post(_dada_callback(shipment.number, 3, now - 30))  # 配送中: walks pick_up then transit
    shipment.refresh_from_db()
    assert shipment.status == "in_transit"
    post(_dada_callback(shipment.number, 4, now))
    shipment.refresh_from_db()
    assert shipment.status == "delivered"
    actions = list(
        TransitionEvent.objects.filter(object_id=str(sid), object_type="delivery.shipment")
        .order_by("pk")
        .values_list("action", flat=True)
    )
    assert actions == ["book", "accept", "pick_up", "transit", "deliver"]
    # The rider's name and phone in the callback are not stored.
    assert not ShipmentEvent.objects.filter(description__contains="王骑士").exists()
    assert not ShipmentEvent.objects.filter(description__contains="15600000000").exists()


def test_sf_track_fills_missed_pushes_and_cancel_asks_sf(
    world: World, test_sources: SourceBook, sf: tuple[SfExpress, StandIn]
) -> None:
    _, standin = sf
    sid = _book(world, test_sources, "sf").json()["id"]
    api = world.pharmacist.api()
    r = api.post(f"/delivery/shipments/{sid}/track")
    assert r.status_code == 200 and r.json() == {"stored": 2, "transitions": 3}  # accept, pick_up, transit
    assert Shipment.objects.get(pk=sid).status == "in_transit"
    assert api.post(f"/delivery/shipments/{sid}/track").json() == {"stored": 0, "transitions": 0}  # idempotent
    form = {k: v[0] for k, v in urllib.parse.parse_qs(standin.requests[1].content.decode()).items()}
    assert form["serviceCode"] == "EXP_RECE_SEARCH_ROUTES"
    assert json.loads(form["msgData"])["trackingNumber"] == ["SF1234567890123"]

    test_sources.add("rx-cancel", world.me)
    sid2 = api.post("/delivery/shipments", {"source_kind": KIND, "source_id": "rx-cancel", "method": "courier"}).json()[
        "id"
    ]
    standin.requests.clear()
    Shipment.objects.filter(pk=sid).update(waybill_no="SF-OTHER")  # the stand-in hands out one waybill number
    api.post(f"/delivery/shipments/{sid2}/book", {"courier": "sf"})
    r = api.post(f"/delivery/shipments/{sid2}/cancel", {"reason": "患者取消"})
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    form = {k: v[0] for k, v in urllib.parse.parse_qs(standin.requests[-1].content.decode()).items()}
    assert form["serviceCode"] == "EXP_RECE_UPDATE_ORDER"
    assert json.loads(form["msgData"]) == {"orderId": Shipment.objects.get(pk=sid2).number, "dealType": 2}
    _assert_private(standin.requests[-1].content)


def test_the_sweep_tracks_shipments_gone_quiet(
    world: World, test_sources: SourceBook, sf: tuple[SfExpress, StandIn]
) -> None:
    import datetime as dt

    from django.utils import timezone

    from apps.delivery.tasks import track_quiet_shipments

    _, standin = sf
    sid = _book(world, test_sources, "sf").json()["id"]
    track_quiet_shipments.call_local()  # booked just now: not quiet yet, SF is not asked
    assert len(standin.requests) == 1 and Shipment.objects.get(pk=sid).status == "booked"
    Shipment.objects.filter(pk=sid).update(updated_at=timezone.now() - dt.timedelta(hours=3))
    track_quiet_shipments.call_local()
    assert Shipment.objects.get(pk=sid).status == "in_transit"
    assert ShipmentEvent.objects.filter(shipment_id=sid).count() == 2
    standin.refuse = "8152"  # SF failing: logged and skipped until the shipment has been quiet again
    Shipment.objects.filter(pk=sid).update(updated_at=timezone.now() - dt.timedelta(hours=3))
    track_quiet_shipments.call_local()
    assert Shipment.objects.get(pk=sid).status == "in_transit"
