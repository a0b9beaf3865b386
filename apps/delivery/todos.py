"""Delivery to-dos (apps.todos registry).

Pharmacist and sysadmin: courier shipments still to book, parcels waiting at
the counter, failed deliveries (urgent). Patient: parcels waiting for them at
the pharmacy."""

from __future__ import annotations

from django.db.models import Min

from apps.accounts.models import User
from apps.accounts.roles import Role
from apps.todos.registry import Todo

from .models import Shipment
from .selectors import STAFF_ROLES

S = Shipment.Status


def delivery_todos(user: User) -> list[Todo]:
    if user.role == Role.PATIENT:
        n = Shipment.objects.filter(owner=user, status=S.READY_FOR_PICKUP).count()
        if not n:
            return []
        return [
            Todo(
                kind="delivery.pickup_ready",
                title="待到院取件",
                count=n,
                detail="药品已备好，请凭取件码到医院药房领取",
                page="/pages/delivery/list",
            )
        ]
    if user.role not in STAFF_ROLES:
        return []
    out: list[Todo] = []
    to_book = Shipment.objects.filter(status=S.CREATED, method=Shipment.Method.COURIER)
    n_book = to_book.count()
    if n_book:
        oldest = to_book.aggregate(at=Min("created_at"))["at"]
        out.append(
            Todo(
                kind="delivery.to_book",
                title="待预约快递",
                count=n_book,
                detail="已创建配送单，尚未交给快递公司",
                due_at=oldest,
                route="delivery-shipments",
                query={"status": S.CREATED, "method": Shipment.Method.COURIER},
            )
        )
    if user.role == Role.PHARMACIST:
        waiting = Shipment.objects.filter(status=S.READY_FOR_PICKUP).count()
        to_ready = Shipment.objects.filter(status=S.CREATED, method=Shipment.Method.PICKUP).count()
        if waiting or to_ready:
            out.append(
                Todo(
                    kind="delivery.pickups_waiting",
                    title="到院自取",
                    count=waiting + to_ready,
                    detail=f"待患者取件 {waiting} 件，待备货 {to_ready} 件",
                    route="delivery-shipments",
                    query={"method": Shipment.Method.PICKUP},
                )
            )
    failed = Shipment.objects.filter(status=S.FAILED).count()
    if failed:
        out.append(
            Todo(
                kind="delivery.failed",
                title="配送异常",
                count=failed,
                detail="快递未能送达或已登记异常，请联系患者并处理",
                urgent=True,
                route="delivery-shipments",
                query={"status": S.FAILED},
            )
        )
    return out
