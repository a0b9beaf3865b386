from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, register


@register()
def pharmacy_settings(app_configs: Any, **kwargs: Any) -> list[Error]:
    errors = []
    if not 1 <= settings.PHARMACY_MAX_VALID_DAYS <= 3:
        errors.append(Error("PHARMACY_MAX_VALID_DAYS must be 1-3 (R8)", id="pharmacy.E001"))
    if not 1 <= settings.PHARMACY_MAX_SUPPLY_DAYS <= settings.PHARMACY_CHRONIC_MAX_DAYS:
        errors.append(
            Error("PHARMACY_MAX_SUPPLY_DAYS must be >= 1 and <= PHARMACY_CHRONIC_MAX_DAYS", id="pharmacy.E002")
        )
    if settings.PHARMACY_MAX_DRUGS < 1:
        errors.append(Error("PHARMACY_MAX_DRUGS must be at least 1", id="pharmacy.E003"))
    if settings.PRODUCTION and settings.PHARMACY_CA_SIGNER == "sandbox":
        errors.append(Error("the sandbox CA must not run in production", id="pharmacy.E004"))
    return errors
