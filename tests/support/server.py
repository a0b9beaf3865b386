"""A real daphne process serving the hub on the test database."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class DaphneServer:
    def __init__(self, port: int | None = None, **extra_env: str) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/ws/"
        db = connection.settings_dict
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "hub.settings",
            "HUB_ENV": "test",
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}",
            "REDIS_URL": settings.REDIS_URL,
            "HUB_VAR_DIR": str(settings.VAR_DIR),
            "FAST_PASSWORD_HASHER": "1",
            "WS_ALLOWED_ORIGINS": self.url,
            "DEBUG": "0",
            **extra_env,
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = Path(settings.VAR_DIR) / f"daphne-{self.port}.log"

    def start(self, timeout: float = 30) -> DaphneServer:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), "hub.asgi:application"],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/readyz", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"daphne did not start: see {self.log_path}")
            time.sleep(0.1)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def production_env(**extra: str) -> dict[str, str]:
    """The environment of a production web process on the test database and Redis:
    ``HUB_ENV=production`` with this run's secrets (TLS ends at a proxy in front)."""
    return {
        "HUB_ENV": "production",
        "SECRET_KEY": settings.SECRET_KEY,
        "FIELD_ENCRYPTION_KEY": settings.FIELD_ENCRYPTION_KEY,
        "LOOKUP_HASH_KEY": settings.LOOKUP_HASH_KEY,
        "AUDIT_HMAC_KEY": settings.AUDIT_HMAC_KEY,
        "GRANT_SIGNING_KEY": settings.GRANT_SIGNING_KEY,
        "SANDBOX_SECRET": settings.SANDBOX_SECRET,
        # The probe in DaphneServer.start speaks plain HTTP.
        "SECURE_SSL_REDIRECT": "0",
        "HUEY_IMMEDIATE": "0",
        # No sandbox adapter in production (hub.outside): this process uses none of the outside channels.
        "MINIPROGRAM_ADAPTER": "apps.accounts.adapters.DisabledMiniProgram",
        "NOTIFY_SMS_ADAPTER": "apps.notifications.adapters.DisabledChannel",
        "NOTIFY_WECHAT_ADAPTER": "apps.notifications.adapters.DisabledChannel",
        "NOTIFY_ALIPAY_ADAPTER": "apps.notifications.adapters.DisabledChannel",
        **extra,
    }
