"""Markdown tables from bench/hub/results.json (for docs/benchmarks.md).

.venv/bin/python bench/hub/report.py [bench/hub/results.json]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main() -> None:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).with_name("results.json"))
    data = json.loads(path.read_text())
    rows = data["results"]
    m = data["machine"]
    print(f"Machine: {m['cores']} cores ({m['cpu']}), {m['memory_gb']} GB, Python {m['python']}, run {m['date']}.\n")
    print("S2, six-person rooms, ephemeral room signals (`im.signal`), each to the other 5:\n")
    print(
        "| server | rooms | offered deliveries/s | achieved/s | delivered | p50 ms | p99 ms | server CPU | CPU-us/delivery |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if r.get("scenario") == "S2":
            print(
                f"| {r['server']} | {r['rooms']} | {r['offered_deliveries_per_s']:.0f} | {r['achieved_deliveries_per_s']} "
                f"| {r['delivered_pct']}% | {r['p50_ms']} | {r['p99_ms']} | {r['server_cpu_pct']}% "
                f"| {r['server_cpu_us_per_delivery']} |"
            )
    print("\nS1, 1:1 chat, persisted (`im.send`: commit, ack, deliver):\n")
    print(
        "| server | pairs | offered msg/s | acked msg/s | acked | delivered | ack p50 ms | ack p99 ms | delivery p99 ms | server CPU |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if r.get("scenario") == "S1":
            print(
                f"| {r['server']} | {r['pairs']} | {r['offered_msgs_per_s']:.0f} | {r['acked_msgs_per_s']} | {r['acked_pct']}% "
                f"| {r['delivered_pct']}% | {r['ack_p50_ms']} | {r['ack_p99_ms']} | {r['delivery_p99_ms']} | {r['server_cpu_pct']}% |"
            )
    print("\nS4, idle sockets with heartbeats (every 5 s here), then a SIGKILL restart:\n")
    print(
        "| server | sockets | connect all (s) | kB/socket | heartbeat p50 ms | heartbeat p99 ms | 99% resumed after restart (s) |"
    )
    print("|---|---|---|---|---|---|---|")
    connect = {r["server"]: r["connect_s"] for r in rows if r.get("event") == "S4_connected"}
    restart = {r["server"]: r for r in rows if r.get("scenario") == "S4_restart"}
    for r in rows:
        if r.get("scenario") == "S4":
            rs = restart.get(r["server"], {})
            print(
                f"| {r['server']} | {r['sockets']} | {connect.get(r['server'])} | {r.get('kb_per_socket', '-')} "
                f"| {r['heartbeat_p50_ms']} | {r['heartbeat_p99_ms']} | {rs.get('p99_resumed_s')} |"
            )


if __name__ == "__main__":
    main()
