"""The S5 benchmark script runs end to end in its quick mode (no timing asserted here:
the numbers are for docs/benchmarks.md, from a full run on a quiet machine)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_s5_script_runs_in_quick_mode(tmp_path: Path) -> None:
    out = tmp_path / "s5.json"
    # The script's own database (migrated and filled by it; not the test database).
    url = os.environ.get("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/timed_test")
    done = subprocess.run(
        [sys.executable, "bench/timed/s5_sessions.py", "--quick", "--db", url, "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(out.read_text())
    (result,) = report["results"]
    assert result["phase"] == "worker_restart" and result["sessions"] == 100
    assert result["not_ended"] == 0 and result["wrong_reason"] == 0
    assert result["stop_db"]["n"] == 100 and result["ticks_received"] > 0
    assert "| worker_restart | 100 |" in done.stdout
