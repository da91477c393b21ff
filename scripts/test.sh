#!/usr/bin/env bash
# THE TEST COMMAND: sets up a fresh machine, starts the local real stack, then runs every test:
# cargo test (the Rust core) and pytest (unit, integration on real Kafka + MinIO, e2e in real
# Airflow 3 with real dbt and DuckDB). `.ci/run` calls exactly this.
#
#   scripts/test.sh [extra pytest args, e.g. -k drain]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export DBT_SEND_ANONYMOUS_USAGE_STATS=False DO_NOT_TRACK=1

scripts/setup.sh
# Lint and types (pyproject.toml): seconds, so they go before the stack; mypy checks the source tree.
.venv/bin/ruff check python/spotify_pipeline
.venv/bin/mypy
scripts/stack.sh up
# --release shares the dependencies that the wheel's release build just compiled.
cargo test --release -p spotify-pipeline-core
.venv/bin/python -m pytest python/tests -ra "$@"
