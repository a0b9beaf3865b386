from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, register

from .scoring import NORMS, ROUNDINGS


@register()
def psych_settings(app_configs: Any, **kwargs: Any) -> list[Error]:
    errors = []
    if settings.PSYCH_ZUNG_NORM not in NORMS:
        errors.append(Error(f"PSYCH_ZUNG_NORM must be one of {NORMS}", id="psych.E001"))
    if settings.PSYCH_STANDARD_ROUNDING not in ROUNDINGS:
        errors.append(Error(f"PSYCH_STANDARD_ROUNDING must be one of {ROUNDINGS}", id="psych.E002"))
    if settings.PSYCH_ALERT_ACK_MINUTES < 1:
        errors.append(Error("PSYCH_ALERT_ACK_MINUTES must be at least 1", id="psych.E003"))
    return errors
