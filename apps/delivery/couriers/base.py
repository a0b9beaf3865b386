"""One interface for every courier (SF Express, Dada, the sandbox).

An adapter gets plain data (:class:`Parcel`, :class:`Party`), never a model or
anything of the source: what a courier can receive is decided here once.
``Party.for_courier`` is the recipient as couriers see it: the masked name
(张*), the phone only in the field the courier's API requires it in, and the
address. The goods description is always the neutral :data:`GOODS_NAME`.

HTTP goes through an ``httpx.Client`` with the courier's base URL; tests pass
a transport standing in for the courier's server (``httpx.MockTransport``)
and read the exact bytes sent."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx

from hub.crypto import mask_name, mask_phone

# What every courier is told the parcel holds: never a drug, a diagnosis or an item title.
GOODS_NAME = "医院物品"


class CourierRejected(Exception):
    """A callback or an answer we do not accept; ``code`` is stable (for logs and tests)."""

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(code)
        self.code = code
        self.message = message or code


class CourierFailed(Exception):
    """The courier's API could not be reached or refused the request (book, cancel, track)."""

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(code)
        self.code = code
        self.message = message or code


@dataclass(frozen=True)
class Party:
    """Sender or recipient. ``name`` / ``phone`` are the real values; adapters
    send ``courier_name`` and use ``phone`` only where the API requires it."""

    name: str
    phone: str
    province: str
    city: str
    district: str
    address: str  # street and house (detail)
    company: str = ""

    @property
    def courier_name(self) -> str:
        return mask_name(self.name)

    @property
    def masked_phone(self) -> str:
        return mask_phone(self.phone)


@dataclass(frozen=True)
class Parcel:
    """What the adapter knows of the shipment: our order number and nothing of the source."""

    number: str  # our shipment number, the courier's order id
    waybill_no: str = ""
    weight_kg: float = 1.0


@dataclass(frozen=True)
class Booking:
    waybill_no: str


@dataclass(frozen=True)
class CourierEvent:
    """One event of a callback or a track answer, already mapped to our status ('' = history only)."""

    number: str  # our order number ('' when the courier sends the waybill only)
    waybill_no: str
    event_id: str  # stable per event: the same event twice has the same id
    status: str  # a Shipment.Status value, or '' when the event moves nothing
    courier_status: str
    description: str
    location: str
    occurred_at: dt.datetime


@dataclass(frozen=True)
class CallbackAnswer:
    """What the courier expects back once the events are stored."""

    body: bytes
    content_type: str = "application/json"


class Courier:
    code: ClassVar[str] = ""
    name: ClassVar[str] = ""
    sandbox: ClassVar[bool] = False

    def __init__(self, *, base_url: str, transport: httpx.BaseTransport | None = None, timeout: float = 10.0) -> None:
        self.http = httpx.Client(base_url=base_url, transport=transport, timeout=timeout)

    def book(self, parcel: Parcel, sender: Party, recipient: Party) -> Booking:
        raise NotImplementedError

    def cancel(self, parcel: Parcel) -> None:
        raise NotImplementedError

    def track(self, parcel: Parcel) -> list[CourierEvent]:
        raise NotImplementedError

    def parse_callback(self, headers: Mapping[str, str], body: bytes) -> list[CourierEvent]:
        """Verify and parse a callback; raise :class:`CourierRejected` when it is not genuine."""
        raise NotImplementedError

    def callback_answer(self) -> CallbackAnswer:
        raise NotImplementedError

    def _post(self, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.post(path, **kwargs)
        except httpx.HTTPError as exc:
            raise CourierFailed("courier.unreachable", f"{self.name}接口无法连接") from exc
        if response.status_code >= 400:
            raise CourierFailed("courier.http_error", f"{self.name}接口返回 HTTP {response.status_code}")
        return response
