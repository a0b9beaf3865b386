"""/api/v1/delivery/: address book and shipments (patient), shipment handling
(pharmacist, sysadmin), courier callbacks (public, signed), the sandbox courier's
control (never in production).

A patient reaches only their own account's addresses and shipments; any other
id answers the same 404."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Query, Router, Status

from apps.accounts.models import User
from apps.accounts.roles import Role
from apps.audit.services import audit_record
from hub.auth import require_roles
from hub.errors import HubCode, Invalid, NotFound, errors
from hub.pagination import PageParams, page

from . import couriers, sandbox_control, selectors, services
from .errors import DeliveryCode
from .models import Shipment
from .schemas import (
    AddressIn,
    AddressListOut,
    AddressOut,
    BookIn,
    CallbackAckOut,
    PickupCodeOut,
    PickupVerifyIn,
    ReasonIn,
    SandboxStepIn,
    SandboxStepOut,
    ShipmentIn,
    ShipmentListOut,
    ShipmentOut,
    TrackOut,
)
from .selectors import STAFF_ROLES

router = Router()

R = DeliveryCode.TRANSITION_REFUSED


def _data(payload: AddressIn) -> services.AddressData:
    return services.AddressData(**payload.dict())


def _staff_row(user: User, shipment: Shipment) -> dict[str, Any]:
    return selectors.shipment_row(selectors.staff_shipment(shipment.pk), user, with_events=True)


# --- patient: address book ------------------------------------------------------------------


@router.get("/addresses", response={200: AddressListOut, **errors(HubCode.FORBIDDEN)}, summary="我的收货地址")
def address_list(request: HttpRequest) -> dict[str, Any]:
    user = require_roles(request, [Role.PATIENT])
    return {"items": [selectors.address_row(a) for a in selectors.addresses(user)]}


@router.post(
    "/addresses",
    response={
        201: AddressOut,
        **errors(HubCode.FORBIDDEN, DeliveryCode.ADDRESS_INVALID, DeliveryCode.ADDRESS_LIMIT, HubCode.VALIDATION_ERROR),
    },
    summary="新增收货地址",
)
def address_create(request: HttpRequest, payload: AddressIn) -> Status[dict[str, Any]]:
    user = require_roles(request, [Role.PATIENT])
    return Status(201, selectors.address_row(services.address_create(user=user, data=_data(payload))))


@router.patch(
    "/addresses/{address_id}",
    response={
        200: AddressOut,
        **errors(HubCode.FORBIDDEN, HubCode.NOT_FOUND, DeliveryCode.ADDRESS_INVALID, HubCode.VALIDATION_ERROR),
    },
    summary="修改收货地址",
)
def address_update(request: HttpRequest, address_id: int, payload: AddressIn) -> dict[str, Any]:
    user = require_roles(request, [Role.PATIENT])
    return selectors.address_row(services.address_update(user=user, address_id=address_id, data=_data(payload)))


@router.delete(
    "/addresses/{address_id}",
    response={204: None, **errors(HubCode.FORBIDDEN, HubCode.NOT_FOUND, HubCode.VALIDATION_ERROR)},
    summary="删除收货地址",
)
def address_delete(request: HttpRequest, address_id: int) -> Status[None]:
    user = require_roles(request, [Role.PATIENT])
    services.address_delete(user=user, address_id=address_id)
    return Status(204, None)


# --- patient: my shipments ------------------------------------------------------------------


@router.get(
    "/my/shipments",
    response={200: ShipmentListOut, **errors(HubCode.FORBIDDEN, HubCode.VALIDATION_ERROR)},
    summary="我的配送（含快递轨迹）",
)
def my_shipments(request: HttpRequest, params: Query[PageParams]) -> dict[str, Any]:
    user = require_roles(request, [Role.PATIENT])
    return page(
        selectors.my_shipments(user).prefetch_related("events"),
        params,
        lambda rows: [selectors.shipment_row(s, user, with_events=True) for s in rows],
    )


@router.get(
    "/my/shipments/{shipment_id}",
    response={200: ShipmentOut, **errors(HubCode.FORBIDDEN, HubCode.NOT_FOUND, HubCode.VALIDATION_ERROR)},
    summary="配送详情",
)
def my_shipment(request: HttpRequest, shipment_id: int) -> dict[str, Any]:
    user = require_roles(request, [Role.PATIENT])
    return selectors.shipment_row(selectors.my_shipment(user, shipment_id), user, with_events=True)


@router.post(
    "/my/shipments/{shipment_id}/pickup-code",
    response={200: PickupCodeOut, **errors(HubCode.FORBIDDEN, HubCode.NOT_FOUND, R, HubCode.VALIDATION_ERROR)},
    summary="获取取件码（只显示一次；再次获取会生成新码，旧码失效）",
)
def pickup_code(request: HttpRequest, shipment_id: int) -> dict[str, Any]:
    user = require_roles(request, [Role.PATIENT])
    return {"code": services.pickup_code_issue(user=user, shipment_id=shipment_id), "shipment_id": shipment_id}


# --- staff ----------------------------------------------------------------------------------


@router.post(
    "/shipments",
    response={
        201: ShipmentOut,
        **errors(
            HubCode.FORBIDDEN,
            DeliveryCode.SOURCE_UNKNOWN,
            DeliveryCode.SOURCE_NOT_SHIPPABLE,
            DeliveryCode.METHOD_NOT_ALLOWED,
            DeliveryCode.ALREADY_SHIPPING,
            DeliveryCode.ADDRESS_REQUIRED,
            DeliveryCode.COURIER_CONSENT_MISSING,
            HubCode.VALIDATION_ERROR,
        ),
    },
    summary="为单据创建配送（药师、系统管理员）",
)
def shipment_create(request: HttpRequest, payload: ShipmentIn) -> Status[dict[str, Any]]:
    staff = require_roles(request, STAFF_ROLES)
    shipment = services.shipment_create(
        staff=staff,
        source_kind=payload.source_kind,
        source_id=payload.source_id,
        method=payload.method,
        address_id=payload.address_id,
    )
    return Status(201, _staff_row(staff, shipment))


@router.get(
    "/shipments",
    response={200: ShipmentListOut, **errors(HubCode.FORBIDDEN, HubCode.VALIDATION_ERROR)},
    summary="查找配送单（配送单号、运单号、状态、来源）",
)
def shipment_search(
    request: HttpRequest,
    params: Query[PageParams],
    q: str = "",
    status: str = "",
    method: str = "",
    source_kind: str = "",
    source_id: str = "",
) -> dict[str, Any]:
    staff = require_roles(request, STAFF_ROLES)
    if status and status not in Shipment.Status.values:
        raise Invalid("状态无效", field="status")
    if method and method not in Shipment.Method.values:
        raise Invalid("配送方式无效", field="method")
    if len(q) > 64 or len(source_kind) > 48 or len(source_id) > 64:
        raise Invalid("查询条件过长")
    qs = selectors.staff_shipments(q=q, status=status, method=method, source_kind=source_kind, source_id=source_id)
    return page(qs, params, lambda rows: [selectors.shipment_row(s, staff) for s in rows])


@router.get(
    "/shipments/{shipment_id}",
    response={200: ShipmentOut, **errors(HubCode.FORBIDDEN, HubCode.NOT_FOUND, HubCode.VALIDATION_ERROR)},
    summary="配送单详情（含收件信息与快递轨迹）",
)
def shipment_detail(request: HttpRequest, shipment_id: int) -> dict[str, Any]:
    staff = require_roles(request, STAFF_ROLES)
    shipment = selectors.staff_shipment(shipment_id)
    audit_record(action="delivery.shipment_view", actor=staff, object_type="delivery_shipment", object_id=shipment.pk)
    return selectors.shipment_row(shipment, staff, with_events=True)


@router.post(
    "/shipments/{shipment_id}/book",
    response={
        200: ShipmentOut,
        **errors(
            HubCode.FORBIDDEN,
            HubCode.NOT_FOUND,
            R,
            DeliveryCode.METHOD_NOT_ALLOWED,
            DeliveryCode.SOURCE_NOT_SHIPPABLE,
            DeliveryCode.SOURCE_UNKNOWN,
            DeliveryCode.COURIER_UNKNOWN,
            DeliveryCode.COURIER_UNAVAILABLE,
            DeliveryCode.COURIER_CONSENT_MISSING,
            HubCode.VALIDATION_ERROR,
        ),
    },
    summary="预约快递（把配送单交给快递公司）",
)
def shipment_book(request: HttpRequest, shipment_id: int, payload: BookIn) -> dict[str, Any]:
    staff = require_roles(request, STAFF_ROLES)
    shipment = services.shipment_book(staff=staff, shipment_id=shipment_id, courier=payload.courier)
    return _staff_row(staff, shipment)


@router.post(
    "/shipments/{shipment_id}/ready",
    response={
        200: ShipmentOut,
        **errors(
            HubCode.FORBIDDEN,
            HubCode.NOT_FOUND,
            R,
            DeliveryCode.METHOD_NOT_ALLOWED,
            DeliveryCode.SOURCE_NOT_SHIPPABLE,
            DeliveryCode.SOURCE_UNKNOWN,
            HubCode.VALIDATION_ERROR,
        ),
    },
    summary="备好待取（到院自取）",
)
def shipment_ready(request: HttpRequest, shipment_id: int) -> dict[str, Any]:
    staff = require_roles(request, [Role.PHARMACIST])
    return _staff_row(staff, services.shipment_ready(staff=staff, shipment_id=shipment_id))


@router.post(
    "/shipments/{shipment_id}/pickup/verify",
    response={
        200: ShipmentOut,
        **errors(
            HubCode.FORBIDDEN,
            HubCode.NOT_FOUND,
            R,
            DeliveryCode.PICKUP_CODE_WRONG,
            DeliveryCode.PICKUP_LOCKED,
            HubCode.VALIDATION_ERROR,
        ),
    },
    summary="核验取件码并交付（药师）",
)
def pickup_verify(request: HttpRequest, shipment_id: int, payload: PickupVerifyIn) -> dict[str, Any]:
    staff = require_roles(request, [Role.PHARMACIST])
    return _staff_row(staff, services.pickup_verify(staff=staff, shipment_id=shipment_id, code=payload.code))


@router.post(
    "/shipments/{shipment_id}/cancel",
    response={
        200: ShipmentOut,
        **errors(
            HubCode.FORBIDDEN,
            HubCode.NOT_FOUND,
            R,
            DeliveryCode.REASON_REQUIRED,
            DeliveryCode.COURIER_UNKNOWN,
            DeliveryCode.COURIER_UNAVAILABLE,
            HubCode.VALIDATION_ERROR,
        ),
    },
    summary="取消配送（揽收前）",
)
def shipment_cancel(request: HttpRequest, shipment_id: int, payload: ReasonIn) -> dict[str, Any]:
    staff = require_roles(request, STAFF_ROLES)
    return _staff_row(staff, services.shipment_cancel(staff=staff, shipment_id=shipment_id, reason=payload.reason))


@router.post(
    "/shipments/{shipment_id}/exception",
    response={
        200: ShipmentOut,
        **errors(HubCode.FORBIDDEN, HubCode.NOT_FOUND, R, DeliveryCode.REASON_REQUIRED, HubCode.VALIDATION_ERROR),
    },
    summary="登记配送异常（丢失、破损、滞留）",
)
def shipment_exception(request: HttpRequest, shipment_id: int, payload: ReasonIn) -> dict[str, Any]:
    staff = require_roles(request, STAFF_ROLES)
    return _staff_row(staff, services.shipment_mark_failed(staff=staff, shipment_id=shipment_id, reason=payload.reason))


@router.post(
    "/shipments/{shipment_id}/track",
    response={
        200: TrackOut,
        **errors(
            HubCode.FORBIDDEN,
            HubCode.NOT_FOUND,
            DeliveryCode.COURIER_UNKNOWN,
            DeliveryCode.COURIER_UNAVAILABLE,
            DeliveryCode.CALLBACK_UNKNOWN_WAYBILL,
            HubCode.VALIDATION_ERROR,
        ),
    },
    summary="向快递公司查询轨迹（补齐漏推的事件）",
)
def shipment_track(request: HttpRequest, shipment_id: int) -> dict[str, Any]:
    require_roles(request, STAFF_ROLES)
    return services.shipment_track(shipment_id=shipment_id)


# --- sandbox courier control (tests and the demo; the sandbox is refused in production) -------


@router.post(
    "/sandbox/shipments/{shipment_id}/step",
    response={
        200: SandboxStepOut,
        **errors(HubCode.FORBIDDEN, HubCode.NOT_FOUND, R, DeliveryCode.COURIER_UNKNOWN, HubCode.VALIDATION_ERROR),
    },
    summary="沙箱快递：立即推送下一步 / 配送失败 / 重复上一条事件",
)
def sandbox_step(request: HttpRequest, shipment_id: int, payload: SandboxStepIn) -> dict[str, Any]:
    staff = require_roles(request, STAFF_ROLES)
    if "sandbox" not in couriers.available():
        raise NotFound("沙箱快递")
    status = sandbox_control.sandbox_step(shipment_id=shipment_id, action=payload.action)
    return {"callback_status": status, "shipment": _staff_row(staff, selectors.staff_shipment(shipment_id))}


# --- courier callbacks (public: the courier's signature is the authentication) -------------------


@router.post(
    "/callbacks/{courier}",
    auth=None,
    response={
        200: CallbackAckOut,
        **errors(
            HubCode.NOT_FOUND,
            DeliveryCode.CALLBACK_REJECTED,
            DeliveryCode.CALLBACK_UNKNOWN_WAYBILL,
            HubCode.VALIDATION_ERROR,
            auth=False,
        ),
    },
    summary="快递公司状态回调（验签后幂等入库，按快递公司要求的格式应答）",
)
def courier_callback(request: HttpRequest, courier: str) -> HttpResponse:
    if len(courier) > 16:
        raise NotFound("快递公司")
    answer = services.callback_receive(courier_code=courier, headers=dict(request.headers), body=request.body)
    return HttpResponse(answer.body, content_type=answer.content_type)
