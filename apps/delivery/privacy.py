"""Number privacy (号码隐私保护) for couriers: the courier gets a virtual number bound to
the recipient's phone for the shipment, never the phone itself.

A provider (an AXN-style binding service of a telecom platform) is a dotted path in
``settings.DELIVERY_PRIVACY_NUMBERS`` loaded through ``hub.outside`` (the sandbox is
refused in production). ``bind`` answers the number the rider dials; calls to it reach
the recipient until the binding expires. A deployment without a provider names
``DirectNumbers``, which answers the real phone (and says so in its name)."""

from __future__ import annotations

import hashlib
import hmac
from typing import Protocol

from django.conf import settings

from hub.outside import load


class PrivacyNumbers(Protocol):
    name: str

    def bind(self, *, shipment_number: str, phone: str, days: int) -> str: ...


class SandboxPrivacyNumbers:
    """Virtual numbers in the 170 range (虚拟运营商号段), one per shipment and phone,
    stable for a shipment so a re-booking answers the same number."""

    name = "sandbox"
    sandbox = True  # refused in production (hub.outside)

    def bind(self, *, shipment_number: str, phone: str, days: int) -> str:
        digest = hmac.new(
            settings.SANDBOX_SECRET.encode(), f"privacy|{shipment_number}|{phone}".encode(), hashlib.sha256
        ).hexdigest()
        return "170" + f"{int(digest[:12], 16) % 10**8:08d}"


class DirectNumbers:
    """No number-privacy provider: the courier gets the recipient's real phone."""

    name = "direct"

    def bind(self, *, shipment_number: str, phone: str, days: int) -> str:
        return phone


def privacy_numbers() -> PrivacyNumbers:
    provider: PrivacyNumbers = load(settings.DELIVERY_PRIVACY_NUMBERS, label="DELIVERY_PRIVACY_NUMBERS")()
    return provider
