"""The README's first command serves the seeded demo at 127.0.0.1:8000 with no
PostgreSQL or Redis reachable (run in a network namespace of its own)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root for a network namespace")
def test_demo_command_serves_the_seeded_demo_without_services(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}}
    env["HUB_VAR_DIR"] = str(tmp_path)
    run = subprocess.run(
        ["unshare", "--net", "sh", "-c", f"ip link set lo up && exec {sys.executable} tests/quickstart_probe.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "quickstart ok" in run.stdout
