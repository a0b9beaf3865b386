"""Writes of the delivery domain: address book, shipments, courier booking,
pickup codes, courier callbacks, the sandbox courier's steps.

Every status change goes through apps.core.lifecycle.transition with
SHIPMENT_TRANSITIONS (row lock, table check, event row, audit record with ids
and codes only). The patient's sockets hear ``shipment.updated`` after commit
(``events.py``)."""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.models import ConsentRecord, Patient, User
from apps.accounts.selectors import has_consent
from apps.audit.models import AuditEvent
from apps.audit.services import audit_record
from apps.core import lifecycle
from apps.core.lifecycle import AuditEntry
from apps.notifications.services import notify_user
from hub import crypto
from hub.errors import Invalid, NotFound

from . import couriers, events, sources
from .couriers.base import CallbackAnswer, Courier, CourierEvent, CourierFailed, CourierRejected, Parcel, Party
from .errors import DeliveryCode, DeliveryError
from .models import Address, Shipment, ShipmentEvent
from .privacy import privacy_numbers
from .states import SHIPMENT_TRANSITIONS, TERMINAL, path_to

log = logging.getLogger(__name__)

# How a booked sandbox shipment's first timed step is scheduled: ``tasks`` registers it in
# ``apps.py`` (services never import the tasks that call them).
_sandbox_stepper: Callable[[int, float], None] | None = None


def sandbox_stepper_register(step: Callable[[int, float], None]) -> None:
    global _sandbox_stepper
    _sandbox_stepper = step


S = Shipment.Status
PHONE_RE = re.compile(r"^1[3-9]\d{9}$")
REGION_CODE_RE = re.compile(r"^\d{6}$")  # GB/T 2260 administrative division code


# --- address book -----------------------------------------------------------------------


@dataclass(frozen=True)
class AddressData:
    recipient_name: str
    phone: str
    province_code: str
    province: str
    city_code: str
    city: str
    district_code: str
    district: str
    detail: str
    is_default: bool = False


def _check_address(data: AddressData) -> None:
    problems = {}
    if not 1 <= len(data.recipient_name.strip()) <= 32:
        problems["recipient_name"] = "请填写收件人姓名（最多32个字）"
    if not PHONE_RE.match(data.phone):
        problems["phone"] = "请填写11位手机号"
    for key in ("province_code", "city_code", "district_code"):
        if not REGION_CODE_RE.match(getattr(data, key)):
            problems[key] = "行政区划代码应为6位数字"
    for key in ("province", "city", "district"):
        if not 1 <= len(getattr(data, key).strip()) <= 32:
            problems[key] = "请选择省、市、区"
    if not 4 <= len(data.detail.strip()) <= 120:
        problems["detail"] = "详细地址应为4到120个字"
    if problems:
        raise DeliveryError(DeliveryCode.ADDRESS_INVALID, fields=problems)


def _apply_address(address: Address, data: AddressData) -> None:
    address.set_recipient(name=data.recipient_name.strip(), phone=data.phone, detail=data.detail.strip())
    for key in ("province_code", "province", "city_code", "city", "district_code", "district"):
        setattr(address, key, getattr(data, key).strip())


def _lock_owner(user: User) -> None:
    # Serialises one account's address-book writes (the single default, the limit).
    User.objects.select_for_update().filter(pk=user.pk).values_list("pk", flat=True).get()


def address_create(*, user: User, data: AddressData) -> Address:
    _check_address(data)
    with transaction.atomic():
        _lock_owner(user)
        existing = Address.objects.filter(owner=user)
        if existing.count() >= settings.DELIVERY_MAX_ADDRESSES:
            raise DeliveryError(DeliveryCode.ADDRESS_LIMIT, limit=settings.DELIVERY_MAX_ADDRESSES)
        make_default = data.is_default or not existing.exists()
        if make_default:
            existing.filter(is_default=True).update(is_default=False)
        address = Address(owner=user, is_default=make_default)
        _apply_address(address, data)
        address.save()
        audit_record(action="delivery.address_create", actor=user, object_type="delivery_address", object_id=address.pk)
    return address


def _own_address(user: User, address_id: int) -> Address:
    address = Address.objects.select_for_update().filter(pk=address_id, owner=user).first()
    if address is None:
        raise NotFound("收货地址")
    return address


def address_update(*, user: User, address_id: int, data: AddressData) -> Address:
    _check_address(data)
    with transaction.atomic():
        _lock_owner(user)
        address = _own_address(user, address_id)
        if data.is_default and not address.is_default:
            Address.objects.filter(owner=user, is_default=True).update(is_default=False)
            address.is_default = True
        _apply_address(address, data)
        address.updated_at = timezone.now()
        address.save()
        audit_record(action="delivery.address_update", actor=user, object_type="delivery_address", object_id=address.pk)
    return address


def address_delete(*, user: User, address_id: int) -> None:
    with transaction.atomic():
        _lock_owner(user)
        address = _own_address(user, address_id)
        was_default = address.is_default
        pk = address.pk
        address.delete()
        if was_default:
            successor = Address.objects.filter(owner=user).order_by("-updated_at", "-pk").first()
            if successor is not None:
                Address.objects.filter(pk=successor.pk).update(is_default=True)
        audit_record(action="delivery.address_delete", actor=user, object_type="delivery_address", object_id=pk)


# --- shipments ------------------------------------------------------------------------


def _ref(shipment: Shipment) -> sources.ShipmentRef:
    return sources.ShipmentRef(
        shipment_id=shipment.pk,
        number=shipment.number,
        source_kind=shipment.source_kind,
        source_id=shipment.source_id,
        status=shipment.status,
        method=shipment.method,
    )


def _hooks(kind: str) -> sources.SourceHooks:
    hooks = sources.source(kind)
    if hooks is None:
        raise DeliveryError(DeliveryCode.SOURCE_UNKNOWN, kind=kind)
    return hooks


def _decision(kind: str, source_id: str) -> sources.ShipDecision:
    decision = _hooks(kind).can_ship(source_id)
    if not decision.ok:
        raise DeliveryError(DeliveryCode.SOURCE_NOT_SHIPPABLE, decision.reason or None, kind=kind)
    return decision


def _new_number() -> str:
    # Our order number for couriers: unguessable (Dada's callback signature has no secret).
    return "DS" + secrets.token_hex(10).upper()


# The audit action of each table action (literal codes: apps/audit/labels.py labels each).
TRANSITION_AUDIT: dict[str, str] = {
    "book": "delivery.book",
    "accept": "delivery.accept",
    "pick_up": "delivery.pick_up",
    "transit": "delivery.transit",
    "deliver": "delivery.deliver",
    "fail": "delivery.fail",
    "redeliver": "delivery.redeliver",
    "return": "delivery.return",
    "ready": "delivery.ready",
    "collect": "delivery.collect",
    "cancel": "delivery.cancel",
    "mark_failed": "delivery.mark_failed",
}


def _transition(
    shipment: Shipment,
    action: str,
    *,
    actor: User | None,
    reason: str = "",
    fields: tuple[str, ...] = (),
    **detail: Any,
) -> Shipment:
    target = SHIPMENT_TRANSITIONS.get((shipment.status, action))
    now = timezone.now()
    shipment.updated_at = now
    extra = ["updated_at", *fields]
    if target in TERMINAL:
        shipment.finished_at = now
        extra.append("finished_at")
    lifecycle.transition(
        shipment,
        action,
        table=SHIPMENT_TRANSITIONS,
        actor=actor,
        code=DeliveryCode.TRANSITION_REFUSED,
        reason=reason,
        fields=extra,
        audit=AuditEntry(
            action=TRANSITION_AUDIT[action],
            object_type="delivery_shipment",
            object_id=shipment.pk,
            detail=detail,
            actor_username="" if actor is not None else f"courier:{shipment.courier or 'system'}",
        ),
    )
    _notify_patient(shipment, now)
    hooks = sources.source(shipment.source_kind)
    if hooks is not None and shipment.status in (S.DELIVERED, S.PICKED_UP_BY_PATIENT):
        hooks.on_delivered(_ref(shipment))
    elif hooks is not None and shipment.status == S.FAILED:
        hooks.on_failed(_ref(shipment))
    elif hooks is None:
        log.warning("shipment %s: no source registered for %s", shipment.pk, shipment.source_kind)
    return shipment


# What the patient is told offline (outbox: in-app, then WeChat / Alipay / SMS). Never
# what the parcel holds: these texts may go out by SMS.
NOTICES: dict[str, tuple[str, str]] = {
    S.READY_FOR_PICKUP: ("药品已备好待取", "您的药品已在医院药房备好，请在“我的配送”获取取件码后到药房领取。"),
    S.FAILED: ("配送异常", "您的快递未能送达，药房会尽快与您联系；也可在“我的配送”查看详情。"),
    S.IN_TRANSIT: ("快递运输中", "您的快递已发出，可在“我的配送”查看物流进度。"),
}


def _notify_patient(shipment: Shipment, now: dt.datetime) -> None:
    notice = NOTICES.get(shipment.status)
    if notice is None:
        return
    title, text = notice
    notify_user(
        user=shipment.owner,
        template="notice",
        params={"title": title, "text": text},
        dedupe_key=f"delivery:{shipment.pk}:{shipment.status}:{int(now.timestamp())}",
    )


def _locked(shipment_id: int) -> Shipment:
    shipment = Shipment.objects.select_for_update().filter(pk=shipment_id).first()
    if shipment is None:
        raise NotFound("配送单")
    return shipment


def shipment_create(
    *,
    staff: User,
    source_kind: str,
    source_id: str,
    method: str,
    address_id: int | None = None,
) -> Shipment:
    """Create the shipment of a source the owning app says may ship now."""
    if method not in Shipment.Method.values:
        raise Invalid("配送方式无效", field="method")
    decision = _decision(source_kind, source_id)
    if method not in decision.methods:
        raise DeliveryError(
            DeliveryCode.METHOD_NOT_ALLOWED,
            "该单据只能到院自取" if decision.methods == ("pickup",) else None,
            methods=list(decision.methods),
        )
    patient = (
        Patient.objects.select_related("owner").filter(pk=decision.patient_id, is_active=True).first()
        if decision.patient_id is not None
        else None
    )
    if patient is None:
        raise DeliveryError(DeliveryCode.SOURCE_NOT_SHIPPABLE, "找不到该单据的就诊人", kind=source_kind)
    owner = patient.owner
    shipment = Shipment(
        number=_new_number(),
        source_kind=source_kind,
        source_id=source_id,
        patient=patient,
        owner=owner,
        method=method,
        created_by=staff,
    )
    if method == Shipment.Method.COURIER:
        if not has_consent(owner, ConsentRecord.Purpose.COURIER_SHARING):
            raise DeliveryError(DeliveryCode.COURIER_CONSENT_MISSING)
        addresses = Address.objects.filter(owner=owner)
        address = addresses.filter(pk=address_id).first() if address_id else addresses.filter(is_default=True).first()
        if address is None:
            raise DeliveryError(DeliveryCode.ADDRESS_REQUIRED)
        shipment.copy_recipient_from(address)
    else:
        # Collected at the pharmacy: the patient's name and the account's phone, no address.
        shipment.set_recipient(name=patient.name, phone=owner.phone or patient.phone, detail="")
    try:
        with transaction.atomic():
            shipment.save()
            audit_record(
                action="delivery.create",
                actor=staff,
                object_type="delivery_shipment",
                object_id=shipment.pk,
                detail={"source": source_kind, "delivery_method": method},
            )
            events.publish_shipment(shipment)
    except IntegrityError as exc:
        raise DeliveryError(DeliveryCode.ALREADY_SHIPPING) from exc
    return shipment


def _sender() -> Party:
    s = settings.DELIVERY_SENDER
    return Party(
        name=s["name"],
        phone=s["phone"],
        province=s["province"],
        city=s["city"],
        district=s["district"],
        address=s["address"],
        company=s.get("company", ""),
    )


def recipient_party(shipment: Shipment) -> Party:
    """What the courier is told about the recipient: the masked name, a virtual number bound
    to their phone for this shipment (``privacy``), the address."""
    phone = privacy_numbers().bind(
        shipment_number=shipment.number, phone=shipment.phone, days=settings.DELIVERY_PRIVACY_BINDING_DAYS
    )
    return Party(
        name=shipment.recipient_name,
        phone=phone,
        province=shipment.province,
        city=shipment.city,
        district=shipment.district,
        address=shipment.detail,
    )


def _adapter(code: str) -> Courier:
    try:
        return couriers.courier(code)
    except LookupError as exc:
        raise DeliveryError(DeliveryCode.COURIER_UNKNOWN, courier=code) from exc


def shipment_book(*, staff: User, shipment_id: int, courier: str = "") -> Shipment:
    """Book the courier: the adapter gets a Parcel and two Parties, nothing of the source.

    The row stays locked while the courier answers, so two clicks never make two
    courier orders; a courier failure writes nothing."""
    code = courier or settings.DELIVERY_DEFAULT_COURIER
    adapter = _adapter(code)
    with transaction.atomic():
        shipment = _locked(shipment_id)
        if shipment.method != Shipment.Method.COURIER:
            raise DeliveryError(DeliveryCode.METHOD_NOT_ALLOWED, "到院自取的配送单不能预约快递")
        lifecycle.require(shipment, "book", table=SHIPMENT_TRANSITIONS, code=DeliveryCode.TRANSITION_REFUSED)
        _decision(shipment.source_kind, shipment.source_id)  # the source may have changed since (refund, recall)
        if not has_consent(shipment.owner, ConsentRecord.Purpose.COURIER_SHARING):
            raise DeliveryError(DeliveryCode.COURIER_CONSENT_MISSING)
        try:
            booking = adapter.book(Parcel(number=shipment.number), _sender(), recipient_party(shipment))
        except CourierFailed as exc:
            log.warning("courier %s refused shipment %s: %s", code, shipment.pk, exc.code)
            raise DeliveryError(DeliveryCode.COURIER_UNAVAILABLE, courier=code, reason=exc.code) from exc
        shipment.courier = code
        shipment.waybill_no = booking.waybill_no
        shipment.booked_at = timezone.now()
        _transition(shipment, "book", actor=staff, fields=("courier", "waybill_no", "booked_at"), courier=code)
        events.publish_shipment(shipment)
        if adapter.sandbox and settings.DELIVERY_SANDBOX_STEP_SECONDS > 0 and _sandbox_stepper is not None:
            pk, step = shipment.pk, _sandbox_stepper
            transaction.on_commit(lambda: step(pk, settings.DELIVERY_SANDBOX_STEP_SECONDS))
    return shipment


def shipment_ready(*, staff: User, shipment_id: int) -> Shipment:
    """The parcel waits at the pharmacy counter; the patient can now get a pickup code."""
    with transaction.atomic():
        shipment = _locked(shipment_id)
        if shipment.method != Shipment.Method.PICKUP:
            raise DeliveryError(DeliveryCode.METHOD_NOT_ALLOWED, "快递配送的配送单不能设为待取件")
        _decision(shipment.source_kind, shipment.source_id)
        _transition(shipment, "ready", actor=staff)
        events.publish_shipment(shipment)
    return shipment


def shipment_cancel(*, staff: User, shipment_id: int, reason: str) -> Shipment:
    if not reason.strip():
        raise DeliveryError(DeliveryCode.REASON_REQUIRED)
    with transaction.atomic():
        shipment = _locked(shipment_id)
        lifecycle.require(shipment, "cancel", table=SHIPMENT_TRANSITIONS, code=DeliveryCode.TRANSITION_REFUSED)
        if shipment.status in (S.BOOKED, S.ACCEPTED):
            try:
                _adapter(shipment.courier).cancel(Parcel(number=shipment.number, waybill_no=shipment.waybill_no))
            except CourierFailed as exc:
                raise DeliveryError(
                    DeliveryCode.COURIER_UNAVAILABLE, courier=shipment.courier, reason=exc.code
                ) from exc
        shipment.pickup_code_hash = ""
        _transition(shipment, "cancel", actor=staff, reason=reason.strip(), fields=("pickup_code_hash",))
        events.publish_shipment(shipment)
    return shipment


def shipment_mark_failed(*, staff: User, shipment_id: int, reason: str) -> Shipment:
    """Staff record a delivery exception (lost, damaged, stuck): the shipment fails and
    the owning app is told (on_failed), like a courier failure."""
    reason = reason.strip()
    if not reason:
        raise DeliveryError(DeliveryCode.REASON_REQUIRED)
    with transaction.atomic():
        shipment = _locked(shipment_id)
        shipment.exception_reason = reason[:200]
        _transition(shipment, "mark_failed", actor=staff, reason=reason, fields=("exception_reason",))
        events.publish_shipment(shipment)
    return shipment


# --- pickup codes -----------------------------------------------------------------------


def _code_hash(shipment: Shipment, code: str) -> str:
    return crypto.lookup_hash(code, context=f"delivery.pickup:{shipment.pk}")


def pickup_code_issue(*, user: User, shipment_id: int) -> str:
    """A fresh 6-digit pickup code for the patient, shown once: only its keyed hash
    is kept, so asking again issues a new code and the old one stops working."""
    with transaction.atomic():
        shipment = Shipment.objects.select_for_update().filter(pk=shipment_id, owner=user).first()
        if shipment is None:
            raise NotFound("配送单")
        lifecycle.require(shipment, "collect", table=SHIPMENT_TRANSITIONS, code=DeliveryCode.TRANSITION_REFUSED)
        code = f"{secrets.randbelow(10**6):06d}"
        shipment.pickup_code_hash = _code_hash(shipment, code)
        shipment.save(update_fields=["pickup_code_hash"])
        audit_record(
            action="delivery.pickup_code_issue", actor=user, object_type="delivery_shipment", object_id=shipment.pk
        )
    return code


def _pickup_attempt(shipment_id: int) -> int:
    """Count one attempt under the row's lock and commit it before the code is looked
    at (as the login throttle does), so concurrent guesses cannot outrun the limit."""
    now = timezone.now()
    window = dt.timedelta(minutes=settings.DELIVERY_PICKUP_LOCK_MINUTES)
    with transaction.atomic():
        shipment = _locked(shipment_id)
        if shipment.pickup_locked_until and shipment.pickup_locked_until > now:
            left = int((shipment.pickup_locked_until - now).total_seconds()) + 1
            raise DeliveryError(DeliveryCode.PICKUP_LOCKED, retry_after_seconds=left)
        lifecycle.require(shipment, "collect", table=SHIPMENT_TRANSITIONS, code=DeliveryCode.TRANSITION_REFUSED)
        if (
            shipment.pickup_first_failure_at is None
            or now - shipment.pickup_first_failure_at > window
            or shipment.pickup_locked_until
        ):
            shipment.pickup_failures = 0
            shipment.pickup_first_failure_at = now
            shipment.pickup_locked_until = None
        over = shipment.pickup_failures >= settings.DELIVERY_PICKUP_MAX_FAILURES
        if over:
            shipment.pickup_locked_until = now + window
            _audit_pickup_lockout(shipment)
        else:
            shipment.pickup_failures += 1
        shipment.save(update_fields=["pickup_failures", "pickup_first_failure_at", "pickup_locked_until"])
    if over:
        raise DeliveryError(DeliveryCode.PICKUP_LOCKED, retry_after_seconds=int(window.total_seconds()))
    return shipment.pickup_failures


def _audit_pickup_lockout(shipment: Shipment) -> None:
    audit_record(
        action="delivery.pickup_locked",
        actor=None,
        actor_username="system",
        object_type="delivery_shipment",
        object_id=shipment.pk,
        result=AuditEvent.Result.DENIED,
        detail={"until": shipment.pickup_locked_until.isoformat() if shipment.pickup_locked_until else ""},
    )


def pickup_verify(*, staff: User, shipment_id: int, code: str) -> Shipment:
    """The pharmacist checks the patient's code at the counter; a right code hands the
    parcel over (picked_up_by_patient), a wrong one counts towards the lockout."""
    attempt = _pickup_attempt(shipment_id)
    now = timezone.now()
    with transaction.atomic():
        shipment = _locked(shipment_id)
        expected = shipment.pickup_code_hash
        right = bool(expected) and code.isdigit() and hmac.compare_digest(_code_hash(shipment, code), expected)
        if right:
            shipment.pickup_failures = 0
            shipment.pickup_first_failure_at = None
            shipment.pickup_code_hash = ""
            _transition(
                shipment,
                "collect",
                actor=staff,
                fields=("pickup_failures", "pickup_first_failure_at", "pickup_code_hash"),
            )
            events.publish_shipment(shipment)
            return shipment
        audit_record(
            action="delivery.pickup_code_failed",
            actor=staff,
            object_type="delivery_shipment",
            object_id=shipment.pk,
            result=AuditEvent.Result.FAILED,
            detail={"failures": attempt},
        )
        locked = attempt >= settings.DELIVERY_PICKUP_MAX_FAILURES
        if locked:
            until = now + dt.timedelta(minutes=settings.DELIVERY_PICKUP_LOCK_MINUTES)
            if Shipment.objects.filter(pk=shipment.pk, pickup_locked_until__isnull=True).update(
                pickup_locked_until=until
            ):
                shipment.pickup_locked_until = until
                _audit_pickup_lockout(shipment)
    if locked:
        raise DeliveryError(DeliveryCode.PICKUP_LOCKED, retry_after_seconds=settings.DELIVERY_PICKUP_LOCK_MINUTES * 60)
    raise DeliveryError(
        DeliveryCode.PICKUP_CODE_WRONG, remaining_attempts=max(0, settings.DELIVERY_PICKUP_MAX_FAILURES - attempt)
    )


# --- courier callbacks ------------------------------------------------------------------


def _advance(shipment: Shipment, target: str) -> list[str]:
    """Walk the table from the shipment's status to ``target`` (courier actions only);
    nothing when ``target`` is not ahead (a late or repeated event)."""
    done = []
    for action in path_to(shipment.status, target):
        _transition(shipment, action, actor=None, courier=shipment.courier)
        done.append(action)
    return done


def events_apply(*, courier_code: str, items: list[CourierEvent]) -> dict[str, int]:
    """Store the courier's events once each and move the shipments forward.

    Every waybill must be one of ours for this courier, else the whole callback is
    refused and nothing is stored. Each shipment's row is locked before its events
    are looked up, so concurrent duplicates of a callback serialise: the first
    stores the event and moves the shipment, the others find the event and do
    nothing."""
    with transaction.atomic():
        shipments: dict[str, Shipment] = {}
        for item in items:
            if item.waybill_no in shipments:
                continue
            shipment = Shipment.objects.filter(courier=courier_code, waybill_no=item.waybill_no).order_by("pk").first()
            if shipment is None or (item.number and item.number != shipment.number):
                raise DeliveryError(DeliveryCode.CALLBACK_UNKNOWN_WAYBILL)
            shipments[item.waybill_no] = shipment
        stored = moved = 0
        for waybill_no, shipment in sorted(shipments.items(), key=lambda kv: kv[1].pk):  # one lock order
            shipment = _locked(shipment.pk)
            fresh = []
            for item in (i for i in items if i.waybill_no == waybill_no):
                if ShipmentEvent.objects.filter(shipment=shipment, raw_event_id=item.event_id).exists():
                    continue
                fresh.append(
                    ShipmentEvent.objects.create(
                        shipment=shipment,
                        courier=courier_code,
                        raw_event_id=item.event_id,
                        status=item.status,
                        courier_status=item.courier_status,
                        description=item.description,
                        location=item.location,
                        occurred_at=item.occurred_at,
                    )
                )
            stored += len(fresh)
            # Apply in the order the courier says they happened, whatever order they arrived in.
            for event in sorted(fresh, key=lambda e: e.occurred_at):
                if event.status:
                    moved += len(_advance(shipment, event.status))
            if fresh:
                events.publish_shipment(shipment, latest=max(fresh, key=lambda e: e.occurred_at))
    return {"stored": stored, "transitions": moved}


def callback_receive(*, courier_code: str, headers: Mapping[str, str], body: bytes) -> CallbackAnswer:
    """Verify a courier's callback, apply it, and return the answer the courier expects."""
    try:
        adapter = couriers.courier(courier_code)
    except LookupError as exc:
        raise NotFound("快递公司") from exc
    try:
        items = adapter.parse_callback(headers, body)
    except CourierRejected as exc:
        log.warning("courier %s callback rejected: %s", courier_code, exc.code)
        raise DeliveryError(DeliveryCode.CALLBACK_REJECTED, reason=exc.code) from exc
    if any(len(i.event_id) > 96 or not i.event_id or len(i.courier_status) > 32 for i in items):
        raise DeliveryError(DeliveryCode.CALLBACK_REJECTED, reason=f"{courier_code}.malformed")
    events_apply(courier_code=courier_code, items=items)
    return adapter.callback_answer()


def tracks_due(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Track every courier shipment on the way whose last change is older than
    ``DELIVERY_TRACK_AFTER_MINUTES``; a courier that fails is skipped (next sweep)."""
    cutoff = (now or timezone.now()) - dt.timedelta(minutes=settings.DELIVERY_TRACK_AFTER_MINUTES)
    on_the_way = [S.BOOKED, S.ACCEPTED, S.PICKED_UP, S.IN_TRANSIT, S.FAILED]
    tracked = failed = 0
    for pk in Shipment.objects.filter(status__in=on_the_way, updated_at__lt=cutoff).values_list("pk", flat=True):
        try:
            shipment_track(shipment_id=pk)
            tracked += 1
        except DeliveryError as exc:
            log.warning("tracking shipment %s failed: %s", pk, exc.code)
            failed += 1
        Shipment.objects.filter(pk=pk, updated_at__lt=cutoff).update(updated_at=now or timezone.now())
    return {"tracked": tracked, "failed": failed}


def shipment_track(*, shipment_id: int) -> dict[str, int]:
    """Ask the courier for the route and apply it like a callback (a missed push)."""
    shipment = Shipment.objects.filter(pk=shipment_id).first()
    if shipment is None:
        raise NotFound("配送单")
    if not shipment.courier or not shipment.waybill_no:
        return {"stored": 0, "transitions": 0}
    try:
        items = _adapter(shipment.courier).track(Parcel(number=shipment.number, waybill_no=shipment.waybill_no))
    except CourierFailed as exc:
        raise DeliveryError(DeliveryCode.COURIER_UNAVAILABLE, courier=shipment.courier, reason=exc.code) from exc
    return events_apply(courier_code=shipment.courier, items=items)
