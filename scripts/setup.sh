#!/usr/bin/env bash
# Prepares this checkout on a fresh Debian machine: system packages, uv, the virtualenv
# (.venv, from the pinned requirements/dev.lock), and our wheel, built by maturin and installed.
# Idempotent; a second run takes seconds. Sourced or run by scripts/pipeline.sh and scripts/test.sh.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
log() { printf '[setup] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

export DBT_SEND_ANONYMOUS_USAGE_STATS=False DO_NOT_TRACK=1

# ---- system packages (Debian) ----
need_apt=()
command -v pkg-config >/dev/null || need_apt+=(pkg-config)
dpkg -s libssl-dev >/dev/null 2>&1 || need_apt+=(libssl-dev)
dpkg -s zlib1g-dev >/dev/null 2>&1 || need_apt+=(zlib1g-dev)
command -v cc >/dev/null || need_apt+=(build-essential)
command -v curl >/dev/null || need_apt+=(curl)
command -v java >/dev/null || need_apt+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || need_apt+=(maven)
# Only to validate docker-compose.yml in the tests (there is no Docker engine here).
command -v docker-compose >/dev/null || need_apt+=(docker-compose)
# Browser tests: Debian's chromium, driven by playwright-core from npm (no browser download).
command -v chromium >/dev/null || need_apt+=(chromium)
command -v npm >/dev/null || need_apt+=(nodejs npm)
if ((${#need_apt[@]})); then
  log "installing Debian packages: ${need_apt[*]}"
  SUDO=; [[ $(id -u) == 0 ]] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
command -v cargo >/dev/null || die "Rust is needed: install it with rustup (https://rustup.rs), then re-run"
command -v go >/dev/null || die "Go (1.24+) is needed to build MinIO: install it, then re-run"
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || die "Python 3.11+ is needed ($PY is older)"

# ---- uv and the virtualenv ----
# One setup at a time (2 cores; concurrent cargo builds or venv syncs only thrash): later callers wait.
exec 9>"${TMPDIR:-/tmp}/spotify-pipeline-setup.lock"
flock 9
if ! command -v uv >/dev/null; then
  log "installing uv"
  "$PY" -m pip install -q --disable-pip-version-check uv==0.13.8
fi
[[ -x .venv/bin/python ]] || uv venv -q .venv --python "$PY"
log "syncing .venv with requirements/dev.lock"
uv pip install -q --python .venv/bin/python -r requirements/dev.lock

# ---- the wheel ----
log "building the wheel (cargo, release; first build ~6 min on 2 cores)"
rm -rf dist
.venv/bin/maturin build -q --release --compatibility linux --auditwheel skip -o dist >&2
uv pip install -q --python .venv/bin/python --reinstall --no-deps dist/spotify_pipeline-*.whl
# Browser-test tools (dev only), pinned by package-lock.json.
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  log "npm ci (playwright-core, chart.js)"
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error >&2
fi
log "ready: $(.venv/bin/python -c 'import spotify_pipeline as s; print("spotify_pipeline", s.__version__)')"
