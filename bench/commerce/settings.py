"""The product's settings plus the bench-only item kind (``bench/commerce/kind.py``).

Every process of the commerce bench runs on this module (daphne, the huey consumer,
``manage.py migrate`` and the bench's own Django for seeding and the checks), so the
kind is registered wherever an order is priced or fulfilled, as a domain app's is."""

from hub.settings import *  # noqa: F403
from hub.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "bench.commerce.kind.BenchCommerceConfig"]
