"""The whole DAG in real Airflow 3 (`airflow dags test`, SQLite metadata DB) on the real stack,
with real dbt and DuckDB. Every layer is reconciled by event_id with independent readers."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections import Counter
from pathlib import Path

import duckdb
import pytest

from gold_kpis import check_gold_kpis
from reconcile import committed_bronze, duplicates, quarantined
from spotify_pipeline import _core

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[3]


def airflow(env: dict[str, str], command: str, timeout: int = 900) -> subprocess.CompletedProcess:
    """Runs `command` in the project's Airflow environment (scripts/airflow-env.sh)."""
    return subprocess.run(
        ["bash", "-c", f"source scripts/airflow-env.sh && {command}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )


@pytest.fixture
def airflow_env(stack, tmp_path, lake_prefix) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "SPOTIFY_"))}
    env.update(
        SPOTIFY_DATA_DIR=str(tmp_path),
        SPOTIFY_LAKE_URL=f"s3://{stack.bucket}/{lake_prefix}",
        SPOTIFY_KAFKA_BOOTSTRAP=stack.bootstrap,
        SPOTIFY_S3_ENDPOINT=stack.s3_endpoint,
        SPOTIFY_S3_ACCESS_KEY=stack.access_key,
        SPOTIFY_S3_SECRET_KEY=stack.secret_key,
    )
    r = airflow(env, "airflow db migrate && airflow pools set spotify_duckdb 1 'DuckDB: one writer'")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return env


def run_dag(env: dict[str, str], conf: dict) -> dict:
    """Runs the ingest DAG, then the transform DAG its Asset schedules (no scheduler here)."""
    r = airflow(env, f"airflow dags test spotify_pipeline -c '{json.dumps(conf)}' "
               # Every data test, the hourly audit's whole-history ones too.
               """ && airflow dags test spotify_transform -c '{"whole_history_tests": true}'""")
    log = r.stdout + r.stderr
    (Path(env["SPOTIFY_DATA_DIR"]) / "dags-test.log").write_text(log)
    assert r.returncode == 0, log[-5000:]
    s = airflow(env, "python scripts/report.py --json")
    assert s.returncode == 0, s.stdout[-2000:] + s.stderr[-2000:]
    summary = json.loads(s.stdout.strip().splitlines()[-1])
    assert summary["state"] == "success", log[-5000:]
    return summary["xcom"]


FAULTS = {
    "events": 30_000, "seed": 20261124, "start": "2026-11-01T00:00:00Z",
    "duplicate_rate": 0.02, "late_rate": 0.02, "malformed_rate": 0.01,
}


def test_dag_end_to_end_reconciles_every_layer(stack, airflow_env, topic, lake_prefix, tmp_path):
    events = FAULTS["events"]
    # The drain mapped over three partition sets, one task each.
    xcom = run_dag(airflow_env, {**FAULTS, "topic": topic, "drain_tasks": 3})
    assert xcom["drain"]["mapped_tasks"] == 3
    assert sorted(p["partition"] for p in xcom["drain"]["partitions"]) == [0, 1, 2]
    assert xcom["wait_for_records"]["lag"] == events
    lake_files = len(set(committed_bronze(stack, lake_prefix, topic).column("file_key").to_pylist()))
    lake_files += len({r["file_key"] for r in quarantined(stack, lake_prefix, topic)})
    assert xcom["wait_for_batches"]["batches"] == lake_files > 0
    produce, drain, stage, dbt = xcom["produce"], xcom["drain"], xcom["stage"], xcom["dbt_build"]
    truth = produce["sim"]

    # Kafka: every record acknowledged; the simulator's own account adds up.
    assert produce["events"] == events == sum(p["count"] for p in produce["partitions"])
    assert truth["valid"] + truth["malformed"] == events and truth["duplicates"] > 0 and truth["malformed"] > 0
    records = _core.simulate(produce["sim_config"], events)
    expected = sorted(json.loads(r)["event_id"] for kind, r in records if not kind.startswith("malformed"))

    # Bronze lake, read with boto3 + pyarrow: every well-formed delivery once, nothing else;
    # every malformed record in quarantine under its class.
    bronze = committed_bronze(stack, lake_prefix, topic)
    ids = bronze.column("event_id").to_pylist()
    assert sorted(ids) == expected
    assert sum(duplicates(ids).values()) - len(duplicates(ids)) == truth["duplicates"]
    assert drain["rows"] == bronze.num_rows == truth["valid"]
    assert drain["quarantined_by_reason"] == truth["malformed_by_class"]
    assert drain["rows"] + drain["quarantined"] == events

    # Warehouse bronze table: the same deliveries; silver: one row per event.
    db = Path(airflow_env["SPOTIFY_DATA_DIR"]) / "spotify.duckdb"
    with duckdb.connect(str(db), read_only=True) as con:
        wh_ids = sorted(r[0] for r in con.execute("select event_id from bronze.spotify_events").fetchall())
        silver = con.execute("select count(*), count(distinct event_id) from silver.stg_spotify__events").fetchone()
        gold = dict(
            ((str(d), s), p)
            for d, s, p in con.execute("select event_date, song_id, plays from gold.fct_song_plays_daily").fetchall()
        )
    assert stage["rows"] == truth["valid"] and wh_ids == expected
    # Dimension tables from the lake's reference data cover every song and user of the events.
    assert stage["reference"] == {"songs": 2_000, "artists": 250, "users": 500, "subscriptions": stage["reference"]["subscriptions"]}
    with duckdb.connect(str(db), read_only=True) as con:
        orphans = con.execute(
            """select count(*) from bronze.spotify_events e
               left join reference.songs s on s.song_id = e.song_id and s.catalog = '2026-2000-500'
               left join reference.users u on u.user_id = e.user_id and u.catalog = '2026-2000-500'
               where s.song_id is null or u.user_id is null or s.artist_id <> e.artist_id"""
        ).fetchone()[0]
    assert orphans == 0
    assert silver == (len(set(expected)),) * 2 == (truth["valid"] - truth["duplicates"],) * 2

    # Gold, against plays counted straight from the bronze Parquet files (one per event_id).
    plays = Counter(
        (f"{ts:%Y-%m-%d}", song)
        for t, ts, song in {
            i: (t, ts, song)
            for i, t, ts, song in zip(
                ids, bronze.column("event_type").to_pylist(), bronze.column("event_ts").to_pylist(), bronze.column("song_id").to_pylist()
            )
        }.values()
        if t == "play"
    )
    assert sum(gold.values()) == sum(plays.values()) > 0
    assert {k: v for k, v in gold.items() if v} == dict(plays)
    assert dbt["success"] and "error" not in dbt["counts"] and "fail" not in dbt["counts"]

    # Every gold KPI, silver, sessions and the rejected rows, recomputed from the bronze files.
    checked = check_gold_kpis(
        str(db), bronze, drain["quarantined"],
        quarantined_by_reason=drain["quarantined_by_reason"], duplicates=truth["duplicates"],
    )
    assert checked

    # The same seed again re-delivers the same records. Staging loads only the new versions and
    # silver still has one row per event.
    xcom2 = run_dag(airflow_env, {**FAULTS, "topic": topic})
    assert xcom2["produce"]["sim"] == truth and xcom2["produce"]["sim_config"]["seed"] == FAULTS["seed"]
    assert xcom2["drain"]["rows"] == truth["valid"] and xcom2["stage"]["rows"] == truth["valid"]
    assert xcom2["stage"]["versions"]["events"][0] > stage["versions"]["events"][1]
    with duckdb.connect(str(db), read_only=True) as con:
        bronze_rows, distinct = con.execute("select count(*), count(distinct event_id) from bronze.spotify_events").fetchone()
        silver2 = con.execute("select count(*) from silver.stg_spotify__events").fetchone()[0]
        gold_plays = con.execute("select sum(plays) from gold.fct_song_plays_daily").fetchone()[0]
    assert (bronze_rows, distinct, silver2) == (2 * truth["valid"], silver[1], silver[1])
    assert gold_plays == sum(plays.values())
    # The re-delivered batches (new files, same events) change no KPI: recomputed over both loads.
    check_gold_kpis(str(db), committed_bronze(stack, lake_prefix, topic), drain["quarantined"] + xcom2["drain"]["quarantined"])


def test_registered_with_airflow(airflow_env):
    r = airflow(airflow_env, "airflow providers list -o json && airflow plugins -o json")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "spotify-pipeline" in r.stdout
    assert '"spotify_pipeline"' in r.stdout
