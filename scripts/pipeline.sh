#!/usr/bin/env bash
# THE MAIN JOB: on a fresh machine, set everything up and run the whole pipeline once in real
# Airflow 3, on the local real stack (Kafka + MinIO) and DuckDB, then print a summary: the
# ingest DAG (spotify_pipeline: produce, drain, stage), then the DAG its staged-bronze Asset
# schedules (spotify_transform: dbt silver and gold). `airflow dags test` runs no scheduler,
# so this script runs the second DAG itself, as the scheduler would on the asset event.
#
#   scripts/pipeline.sh [--events N] [--seed S] [--topic T]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
EVENTS=100000 SEED=42 TOPIC=spotify_events
while (($#)); do
  case $1 in
    --events) EVENTS=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --topic) TOPIC=$2; shift 2 ;;
    *) echo "usage: $0 [--events N] [--seed S] [--topic T]" >&2; exit 2 ;;
  esac
done

scripts/setup.sh
scripts/stack.sh up
# shellcheck source=scripts/airflow-env.sh
source scripts/airflow-env.sh
echo "[pipeline] Airflow home: $AIRFLOW_HOME; warehouse: $SPOTIFY_DUCKDB_PATH; lake: $SPOTIFY_LAKE_URL" >&2
airflow db migrate >"$AIRFLOW_HOME/db-migrate.log" 2>&1 || { tail -n 30 "$AIRFLOW_HOME/db-migrate.log"; exit 1; }
airflow pools set spotify_duckdb 1 "DuckDB allows one writing process" >/dev/null
echo "[pipeline] running spotify_pipeline: $EVENTS events, seed $SEED, topic $TOPIC (task logs: $AIRFLOW_HOME/dags-test.log)" >&2
set +e
airflow dags test spotify_pipeline -c "{\"events\": $EVENTS, \"seed\": $SEED, \"topic\": \"$TOPIC\"}" >"$AIRFLOW_HOME/dags-test.log" 2>&1
rc=$?
if ((rc == 0)); then
  echo "[pipeline] running spotify_transform (dbt) on the staged bronze" >&2
  # A one-shot run: every data test now, the hourly audit's whole-history ones too.
  airflow dags test spotify_transform -c '{"whole_history_tests": true}' >>"$AIRFLOW_HOME/dags-test.log" 2>&1
  rc=$?
fi
if ((rc == 0)); then
  echo "[pipeline] running spotify_dashboard_export (the offline HTML in the lake)" >&2
  airflow dags test spotify_dashboard_export >>"$AIRFLOW_HOME/dags-test.log" 2>&1
  rc=$?
fi
set -e
grep -E "(produce|drain|stage|dbt): |Produced|Drained|Loaded|dbt build|ERROR|Error|Traceback" "$AIRFLOW_HOME/dags-test.log" | grep -v "DeprecationWarning" | tail -n 40 >&2 || true
python scripts/report.py
exit $rc
