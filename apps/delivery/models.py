"""Shipments of what the hospital sends a patient (an order, a prescription),
the patient's address book, and the courier's events.

A shipment names what it carries by a typed reference (``source_kind``,
``source_id``) only: delivery is a core app and never imports the domain app
that owns the source (``sources.py``). Names, phones and street addresses are
encrypted (``hub.crypto``, the column as associated data); a shipment keeps its
own copy of the recipient, so editing the address book later changes nothing
already sent."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from apps.accounts.models import Patient, User
from hub import crypto


class Recipient(models.Model):
    """Encrypted recipient fields shared by an address-book entry and a shipment."""

    name_enc = models.TextField()
    phone_enc = models.TextField()
    province_code = models.CharField(max_length=12)
    province = models.CharField(max_length=32)
    city_code = models.CharField(max_length=12)
    city = models.CharField(max_length=32)
    district_code = models.CharField(max_length=12)
    district = models.CharField(max_length=32)
    detail_enc = models.TextField()

    # The column context of each ciphertext: the subclass's table, so a value
    # cannot be moved between an address and a shipment.
    context_prefix = ""

    class Meta:
        abstract = True

    def _ctx(self, field: str) -> str:
        return f"{self.context_prefix}.{field}"

    @property
    def recipient_name(self) -> str:
        return crypto.decrypt(self.name_enc, context=self._ctx("name")) if self.name_enc else ""

    @property
    def phone(self) -> str:
        return crypto.decrypt(self.phone_enc, context=self._ctx("phone")) if self.phone_enc else ""

    @property
    def detail(self) -> str:
        return crypto.decrypt(self.detail_enc, context=self._ctx("detail")) if self.detail_enc else ""

    def set_recipient(self, *, name: str, phone: str, detail: str) -> None:
        self.name_enc = crypto.encrypt(name, context=self._ctx("name"))
        self.phone_enc = crypto.encrypt(phone, context=self._ctx("phone"))
        self.detail_enc = crypto.encrypt(detail, context=self._ctx("detail"))

    def copy_recipient_from(self, other: Recipient) -> None:
        self.set_recipient(name=other.recipient_name, phone=other.phone, detail=other.detail)
        for field in ("province_code", "province", "city_code", "city", "district_code", "district"):
            setattr(self, field, getattr(other, field))

    @property
    def region(self) -> str:
        # 直辖市: 北京市 / 北京市 / 朝阳区 reads 北京市朝阳区
        parts = [self.province] + ([self.city] if self.city != self.province else []) + [self.district]
        return "".join(parts)


class Address(Recipient):
    """One entry of a patient account's address book (收货地址)."""

    owner = models.ForeignKey(User, on_delete=models.CASCADE, related_name="delivery_addresses")
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    context_prefix = "delivery_address"

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["owner"], condition=models.Q(is_default=True), name="uniq_default_delivery_address"
            )
        ]


class Shipment(Recipient):
    """What goes to the patient, by courier or collected at the hospital pharmacy."""

    class Method(models.TextChoices):
        COURIER = "courier", "快递配送"
        PICKUP = "pickup", "到院自取"

    class Status(models.TextChoices):
        CREATED = "created", "待发货"  # created by staff, courier not yet booked / not yet ready
        BOOKED = "booked", "已下单"  # the courier accepted our order and gave a waybill
        ACCEPTED = "accepted", "快递员已接单"
        PICKED_UP = "picked_up", "已揽收"
        IN_TRANSIT = "in_transit", "运输中"
        DELIVERED = "delivered", "已签收"
        FAILED = "failed", "配送异常"  # the courier could not deliver, or staff marked an exception
        RETURNED = "returned", "已退回"
        READY_FOR_PICKUP = "ready_for_pickup", "待取件"
        PICKED_UP_BY_PATIENT = "picked_up_by_patient", "已取件"
        CANCELLED = "cancelled", "已取消"

    number = models.CharField(max_length=24, unique=True)  # our order no. for the courier (unguessable)
    source_kind = models.CharField(max_length=48)  # e.g. "pharmacy.prescription"
    source_id = models.CharField(max_length=64)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="shipments")
    owner = models.ForeignKey(User, on_delete=models.PROTECT, related_name="shipments")  # the patient's account
    method = models.CharField(max_length=16, choices=Method.choices)
    courier = models.CharField(max_length=16, blank=True)  # courier code (sf, dada, sandbox)
    waybill_no = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=24, choices=Status.choices, default=Status.CREATED)
    # Pickup: only a keyed hash of the current code; each reveal issues a new code.
    pickup_code_hash = models.CharField(max_length=64, blank=True)
    pickup_failures = models.PositiveSmallIntegerField(default=0)
    pickup_first_failure_at = models.DateTimeField(null=True, blank=True)
    pickup_locked_until = models.DateTimeField(null=True, blank=True)
    exception_reason = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+", null=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    booked_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)  # delivered, collected, returned or cancelled

    context_prefix = "delivery_shipment"

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["courier", "waybill_no"], condition=~models.Q(waybill_no=""), name="uniq_delivery_waybill"
            ),
            # One live shipment per source: a retry creates nothing new.
            models.UniqueConstraint(
                fields=["source_kind", "source_id"],
                condition=~models.Q(status="cancelled"),
                name="uniq_live_shipment_per_source",
            ),
        ]
        indexes = [models.Index(fields=["status", "created_at"]), models.Index(fields=["owner", "-created_at"])]


class ShipmentEvent(models.Model):
    """One event reported by the courier (or our sandbox), stored once per courier event id."""

    shipment = models.ForeignKey(Shipment, on_delete=models.CASCADE, related_name="events")
    courier = models.CharField(max_length=16)
    raw_event_id = models.CharField(max_length=96)
    status = models.CharField(max_length=24, choices=Shipment.Status.choices, blank=True)  # what it means for us
    courier_status = models.CharField(max_length=32, blank=True)  # the courier's own code (SF opCode, Dada status)
    description = models.CharField(max_length=300, blank=True)  # Chinese, from the courier
    location = models.CharField(max_length=100, blank=True)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["shipment", "raw_event_id"], name="uniq_delivery_event"),
        ]
        indexes = [models.Index(fields=["shipment", "occurred_at"])]
