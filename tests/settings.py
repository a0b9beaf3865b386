"""Test settings: PostgreSQL and Redis, as in production."""

import os

os.environ.setdefault("HUB_ENV", "test")
os.environ.setdefault("DATABASE_URL", os.environ.get("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/hub"))
os.environ.setdefault("REDIS_URL", os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/1"))
os.environ.setdefault("HUB_VAR_DIR", os.path.join(os.path.dirname(__file__), "..", "var", "test"))
os.environ.setdefault("FAST_PASSWORD_HASHER", "1")
os.environ.setdefault("HUEY_IMMEDIATE", "1")

from hub.settings import *  # noqa: F403

# One in-process node per test: no peers to wait for.
HUB_JOIN_GRACE = 0.0

# A test database per run, so concurrent runs on one machine do not collide.
DATABASES["default"]["TEST"] = {"NAME": os.environ.get("TEST_DB_NAME", f"test_hub_{os.getpid()}")}  # noqa: F405
