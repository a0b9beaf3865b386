"""Run inside an empty network namespace by tests/test_quickstart.py: start the
README's first command and use the demo it serves at 127.0.0.1:8000.

Nothing listens on PostgreSQL's or Redis's port in that namespace, so this
proves the demo needs neither. Exits non-zero with a reason on failure."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASE = "http://127.0.0.1:8000"


def call(method: str, path: str, body: dict | None = None, token: str = "") -> tuple[int, dict | str]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"{BASE}{path}", data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            raw = r.read().decode()
            status = r.status
    except urllib.error.HTTPError as e:
        raw, status = e.read().decode(), e.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw


def main() -> int:
    for port in (5432, 6379):
        import socket

        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                print(f"port {port} is open: not an empty namespace")
                return 1
    log_path = Path(os.environ["HUB_VAR_DIR"]) / "demo.out"
    with open(log_path, "w") as log:
        demo = subprocess.Popen(
            ["bash", "scripts/demo.sh"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                status, ready = call("GET", "/readyz")
                if status == 200:
                    break
            except OSError:
                pass
            if demo.poll() is not None or time.monotonic() > deadline:
                print("demo did not come up:\n" + log_path.read_text()[-3000:])
                return 1
            time.sleep(0.5)
        assert ready == {"status": "ok", "checks": {"database": "ok"}}, ready
        for page in ("/h5/", "/console/"):
            status, html = call("GET", page)
            assert status == 200 and "<div id=" in str(html), (page, status)
        output = log_path.read_text()
        password = re.search(r"用户名 nurse\s+密码 (\S+)", output)
        assert password, "the demo printed no nurse password"
        status, body = call("POST", "/api/v1/auth/staff/login", {"username": "nurse", "password": password.group(1)})
        assert status == 200, body
        status, body = call("POST", "/api/v1/auth/sms/send", {"phone": "13800138001"})
        assert status == 200, body
        # The demo shows the sandbox SMS on its login page (never in production).
        status, inbox = call("GET", "/api/v1/notifications/sandbox/sms?phone=13800138001")
        assert status == 200 and isinstance(inbox, dict) and inbox["visible"], inbox
        code = re.findall(r"验证码为(\d{6})", inbox["text"])
        assert code, f"the SMS sandbox holds no code: {inbox}"
        status, body = call("POST", "/api/v1/auth/sms/login", {"phone": "13800138001", "code": code[-1]})
        assert status == 200, body
        assert isinstance(body, dict)
        status, patients = call("GET", "/api/v1/accounts/patients", token=body["token"])
        assert status == 200 and isinstance(patients, dict) and patients["count"] == 3, patients
        print("quickstart ok")
        return 0
    finally:
        os.killpg(demo.pid, signal.SIGTERM)
        demo.wait(15)


if __name__ == "__main__":
    sys.exit(main())
