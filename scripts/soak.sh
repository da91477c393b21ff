#!/usr/bin/env bash
# The chaos soak: `spotify-pipeline stream` into real Airflow components on the real stack, with
# faults at random times (kill -9 of drain, stage and dbt tasks, of the scheduler and the
# triggerer; broker and MinIO restarts), then every layer reconciled against the stream's ground
# truth. Prints a table; exits 1 if any reconciliation fails. See python/tests/soak.py.
#
#   scripts/soak.sh --minutes 60 [--seed 7] [--rate 300] [--fault-every-s 45] [--report FILE]
#
# It restarts the broker and MinIO it runs against: give it its own stack (ports and state) if
# anything else uses the default one, e.g.
#   SPOTIFY_STACK_HOME=/tmp/soak-stack SPOTIFY_KAFKA_PORT=19092 SPOTIFY_KAFKA_CONTROLLER_PORT=19093 \
#   SPOTIFY_KAFKA_SASL_PORT=19094 SPOTIFY_MINIO_PORT=19000 SPOTIFY_MINIO_CONSOLE_PORT=19001 scripts/soak.sh ...
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export DBT_SEND_ANONYMOUS_USAGE_STATS=False DO_NOT_TRACK=1
scripts/setup.sh
exec .venv/bin/python python/tests/soak.py "$@"
