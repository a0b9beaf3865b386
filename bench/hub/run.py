"""Hub benchmark: S1 (1:1 chat, persisted), S2 (six-person rooms), S4 (5,000
idle sockets + restart), each against the hub under daphne (PostgreSQL, Redis)
and, in the same run with the same client, the plain-``websockets`` baseline.

    .venv/bin/python bench/hub/run.py [--quick] [--only S1,S2,S4]

Needs PostgreSQL and Redis on 127.0.0.1 (as the test command starts them).
Writes bench/hub/results.json and prints a Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
PY = sys.executable
DB_NAME = "bench_hub"
REDIS_URL = "redis://127.0.0.1:6379/3"
VAR = ROOT / "var" / "bench"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def hub_env(port: int) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "hub.settings",
        "HUB_ENV": "test",
        "DEBUG": "0",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DB_NAME}",
        "REDIS_URL": REDIS_URL,
        "HUB_VAR_DIR": str(VAR),
        "WS_ALLOWED_ORIGINS": f"http://127.0.0.1:{port}",
        # The load client sends far more than one person would.
        "WS_RATE_PER_SECOND": "100000",
        "WS_RATE_BURST": "100000",
        "LOG_LEVEL": "WARNING",
    }


def prepare_database(n_rooms: int, n_pairs: int, n_idle: int) -> dict[str, Any]:
    """Fresh database with users, tokens and conversations for every scenario."""
    import psycopg2

    admin = psycopg2.connect(host="127.0.0.1", user="postgres", dbname="postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        cur.execute(f"CREATE DATABASE {DB_NAME}")
    admin.close()
    env = hub_env(0)
    subprocess.run([PY, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    os.environ.update(
        {
            k: v
            for k, v in env.items()
            if k in {"DJANGO_SETTINGS_MODULE", "HUB_ENV", "DATABASE_URL", "REDIS_URL", "HUB_VAR_DIR"}
        }
    )
    import django

    django.setup()
    from django.utils import timezone

    from apps.accounts.models import AuthToken, User
    from apps.im.models import Conversation, Member
    from hub import crypto

    def users(n: int, prefix: str) -> list[Any]:
        User.objects.bulk_create(
            [User(username=f"{prefix}{i}", display_name=f"压测{i}", role="patient", password="!") for i in range(n)]
        )
        return list(User.objects.filter(username__startswith=prefix).order_by("id"))

    def tokens(us: list[Any]) -> list[str]:
        raws = [secrets.token_urlsafe(32) for _ in us]
        now = timezone.now()
        AuthToken.objects.bulk_create(
            [
                AuthToken(
                    user=u, key_hash=crypto.token_hash(r), expires_at=now + timezone.timedelta(days=1), last_seen_at=now
                )
                for u, r in zip(us, raws, strict=True)
            ]
        )
        return raws

    def conversations(groups: list[list[Any]]) -> list[int]:
        convs = Conversation.objects.bulk_create([Conversation(kind="group") for _ in groups])
        Member.objects.bulk_create(
            [Member(conversation=c, user=u, role="patient") for c, g in zip(convs, groups, strict=True) for u in g]
        )
        return [c.pk for c in convs]

    data: dict[str, Any] = {}
    room_users = users(n_rooms * 6, "r_")
    room_tokens = tokens(room_users)
    groups = [room_users[i * 6 : i * 6 + 6] for i in range(n_rooms)]
    cids = conversations(groups)
    data["rooms"] = [{"conversation": c, "tokens": room_tokens[i * 6 : i * 6 + 6]} for i, c in enumerate(cids)]
    pair_users = users(n_pairs * 2, "c_")
    pair_tokens = tokens(pair_users)
    cids = conversations([pair_users[i * 2 : i * 2 + 2] for i in range(n_pairs)])
    data["pairs"] = [{"conversation": c, "tokens": pair_tokens[i * 2 : i * 2 + 2]} for i, c in enumerate(cids)]
    idle_users = users(n_idle, "i_")
    idle_tokens = tokens(idle_users)
    cids = conversations([[u] for u in idle_users])
    data["idle"] = [{"conversation": c, "token": t} for c, t in zip(cids, idle_tokens, strict=True)]
    return data


class Server:
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/"

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = open(VAR / f"{self.kind}-{self.port}.log", "ab")
        if self.kind == "hub":
            cmd = [PY, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), "hub.asgi:application"]
            env = hub_env(self.port)
        else:
            cmd = [PY, str(ROOT / "bench" / "hub" / "baseline_server.py"), str(self.port)]
            env = dict(os.environ)
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if self.kind == "hub":
                    urllib.request.urlopen(f"{self.origin}/healthz", timeout=1).close()
                else:
                    socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.kind} server did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def rss(self) -> int:
        assert self.proc is not None
        return int(psutil.Process(self.proc.pid).memory_info().rss)


def run_client(
    server: Server, scenario: str, data_path: Path, extra: list[str], on_line: Any = None
) -> list[dict[str, Any]]:
    assert server.proc is not None
    cmd = [
        PY, str(ROOT / "bench" / "hub" / "client.py"), scenario, "--url", server.url, "--origin", server.origin,
        "--data", str(data_path), "--label", server.kind, "--server-pid", str(server.proc.pid), *extra,
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    results = []
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.strip()
        if line.startswith("RESULT "):
            result = json.loads(line[7:])
            print("  ", result, flush=True)
            results.append(result)
        elif on_line is not None:
            on_line(line)
    proc.wait()
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="short steps, fewer sockets (a smoke run)")
    parser.add_argument("--only", default="S1,S2,S4")
    parser.add_argument("--servers", default="baseline,hub")
    parser.add_argument("--profile", action="store_true", help="py-spy the hub during S2 (needs py-spy)")
    args = parser.parse_args()
    only = set(args.only.split(","))
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    VAR.mkdir(parents=True, exist_ok=True)
    n_idle = 500 if args.quick else 5000
    duration = "3" if args.quick else "8"
    print("preparing database ...", flush=True)
    data = prepare_database(n_rooms=170, n_pairs=500, n_idle=n_idle)
    data_path = VAR / "data.json"
    data_path.write_text(json.dumps(data))
    results: list[dict[str, Any]] = []
    for kind in args.servers.split(","):
        if "S2" in only:
            for rooms, rates in (
                (17, ["5000", "10000", "15000", "20000", "25000", "30000"]),
                (170, ["10000", "20000"]),
            ):
                server = Server(kind)
                server.start()
                print(f"S2 {kind} rooms={rooms}", flush=True)
                spy = None
                if args.profile and kind == "hub" and server.proc is not None:
                    svg = str(VAR / f"s2-{rooms}.svg")
                    spy = subprocess.Popen(
                        ["py-spy", "record", "-p", str(server.proc.pid), "-o", svg, "-r", "200", "--nonblocking"],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                results += run_client(
                    server, "rooms", data_path, ["--rooms", str(rooms), "--duration", duration, "--rates", *rates]
                )
                if spy is not None:
                    spy.send_signal(signal.SIGINT)
                    spy.wait()
                server.kill()
        if "S1" in only:
            for pairs, rates in ((50, ["250", "500", "1000", "1500"]), (500, ["1000"])):
                server = Server(kind)
                server.start()
                print(f"S1 {kind} pairs={pairs}", flush=True)
                results += run_client(
                    server, "chat", data_path, ["--pairs", str(pairs), "--duration", duration, "--rates", *rates]
                )
                server.kill()
        if "S4" in only:
            server = Server(kind)
            server.start()
            base_rss = server.rss()
            print(f"S4 {kind} sockets={n_idle}", flush=True)
            memory: dict[str, Any] = {}

            def on_line(
                line: str, server: Server = server, base_rss: int = base_rss, memory: dict[str, Any] = memory
            ) -> None:
                if line == "READY":
                    memory["kb_per_socket"] = round((server.rss() - base_rss) / n_idle / 1024, 1)
                elif line == "RESTART_NOW":
                    server.kill()
                    server.start()

            s4 = run_client(
                server,
                "idle",
                data_path,
                ["--sockets", str(n_idle), "--duration", "20" if not args.quick else "6"],
                on_line,
            )
            for r in s4:
                if r.get("scenario") == "S4":
                    r.update(memory)
            results += s4
            server.kill()
    machine = {
        "cpu": platform.processor() or platform.machine(),
        "cores": psutil.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30),
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d"),
    }
    out = ROOT / "bench" / "hub" / "results.json"
    out.write_text(
        json.dumps({"machine": machine, "quick": args.quick, "results": results}, ensure_ascii=False, indent=1)
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
