"""Test settings: PostgreSQL and Redis, as in production."""

import os

os.environ.setdefault("HUB_ENV", "test")
os.environ.setdefault("DATABASE_URL", os.environ.get("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/hub"))
os.environ.setdefault("REDIS_URL", os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/1"))
os.environ.setdefault("HUB_VAR_DIR", os.path.join(os.path.dirname(__file__), "..", "var", "test"))
os.environ.setdefault("FAST_PASSWORD_HASHER", "1")
os.environ.setdefault("HUEY_IMMEDIATE", "1")

from hub.settings import *  # noqa: F403
