#!/usr/bin/env bash
# Quick start 1: install, seed and serve the demo on the embedded default
# (SQLite file, in-memory channel layer, huey on SQLite; no services needed).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The embedded default, whatever the shell has set.
unset DATABASE_URL REDIS_URL HUB_ENV
export HUB_ENV=embedded
PORT=${PORT:-8000}
.venv/bin/python manage.py migrate --noinput -v0
.venv/bin/python manage.py seed_demo
.venv/bin/python manage.py run_huey >var/huey.log 2>&1 &
HUEY_PID=$!
trap 'kill $HUEY_PID 2>/dev/null || true' EXIT
echo
echo "患者端 (H5):   http://127.0.0.1:$PORT/h5/"
echo "工作台:        http://127.0.0.1:$PORT/console/"
echo "API 文档:      http://127.0.0.1:$PORT/api/v1/docs"
echo
.venv/bin/daphne -b 127.0.0.1 -p "$PORT" hub.asgi:application
