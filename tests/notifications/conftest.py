from __future__ import annotations

import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    # SMS cooldown gates live in the (Redis) cache, which outlives a test run.
    cache.clear()
