#!/usr/bin/env bash
# Installs everything the product needs into this checkout: a virtualenv with
# the Python packages and both frontends built. Idempotent and quick when
# nothing changed. `--dev` adds test tools, Chromium and ffmpeg.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DEV=0
[ "${1:-}" = "--dev" ] && DEV=1

log() { printf '\033[1;34m==> %s\033[0m\n' "$*"; }
stamp_ok() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }

mkdir -p var
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  log "creating virtualenv (.venv)"
  "$PY" -m venv .venv
fi
REQ=requirements.txt
[ $DEV = 1 ] && REQ=requirements-dev.txt
req_hash=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -c1-16)
# The dev set includes the runtime set.
if ! stamp_ok var/.pip-stamp "$req_hash-requirements-dev.txt" && ! stamp_ok var/.pip-stamp "$req_hash-$REQ"; then
  log "installing Python packages ($REQ)"
  .venv/bin/pip install -q --disable-pip-version-check --upgrade pip
  .venv/bin/pip install -q --disable-pip-version-check -r "$REQ"
  echo "$req_hash-$REQ" > var/.pip-stamp
fi

if [ $DEV = 1 ]; then
  missing=()
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  command -v ffmpeg >/dev/null || missing+=(ffmpeg)
  # Chinese glyphs for the browser tests' screenshots.
  dpkg -s fonts-noto-cjk >/dev/null 2>&1 || missing+=(fonts-noto-cjk)
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]} (Debian)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
fi

build_frontend() {  # dir, build command
  local dir=$1 cmd=$2
  local h
  # Everything the build reads, except node_modules and its output.
  # (and frontend/shared, which both apps import).
  h=$(git ls-files -co --exclude-standard -- "$dir" frontend/shared | sort | xargs cat 2>/dev/null | sha256sum | cut -c1-16) || true
  if stamp_ok "var/.build-$(basename "$dir")" "$h"; then return; fi
  command -v npm >/dev/null || { echo "npm (Node.js 20) is required to build $dir" >&2; exit 1; }
  log "building $dir"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error && $cmd)
  echo "$h" > "var/.build-$(basename "$dir")"
}
build_frontend frontend/patient "npm run build"
build_frontend frontend/console "npm run build"
