"""Three runs of the ingest DAG at once, in real `airflow standalone` (scheduler, LocalExecutor,
triggerer, PARALLELISM=4), against one DuckDB file: the one-slot pool serializes its writers, so
every run succeeds, and every layer reconciles by event_id for each run's topic."""

from __future__ import annotations

import time
import uuid

import duckdb
import pytest

from reconcile import committed_bronze
from standalone import airflow_standalone  # noqa: F401  (the session fixture)

pytestmark = pytest.mark.e2e

RUNS = 3
EVENTS = 6_000


def transform_settled(api, known: set[str], timeout_s: float = 600) -> list[dict]:
    """Waits until the asset-triggered transform runs that appeared after ``known`` are all done."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        new = [r for r in api.runs("spotify_transform") if r["dag_run_id"] not in known]
        if new and all(r["state"] in ("success", "failed") for r in new):
            # Quiet for a moment: a stage that finished last may still be queueing its event.
            time.sleep(10)
            again = [r for r in api.runs("spotify_transform") if r["dag_run_id"] not in known]
            if len(again) == len(new) and all(r["state"] in ("success", "failed") for r in again):
                return again
        time.sleep(3)
    raise AssertionError(f"transform runs not settled in {timeout_s} s: {api.runs('spotify_transform')}")


def test_three_runs_at_once_share_one_duckdb_file(airflow_standalone, stack):  # noqa: F811
    sa = airflow_standalone
    api = sa.api()
    for dag_id in ("spotify_pipeline", "spotify_transform"):
        api.wait_for_dag(dag_id)
        api.unpause(dag_id)
    known_transform = {r["dag_run_id"] for r in api.runs("spotify_transform")}

    topics = [f"concurrent_{uuid.uuid4().hex[:8]}_{i}" for i in range(RUNS)]
    run_ids = {
        topic: api.trigger("spotify_pipeline", {"events": EVENTS, "seed": 700 + i, "topic": topic, "drain_tasks": 2, "duplicate_rate": 0.02})
        for i, topic in enumerate(topics)
    }
    # All three are admitted at once (max_active_runs=3); the pool orders their stage tasks.
    time.sleep(5)
    states = {api.run("spotify_pipeline", r)["state"] for r in run_ids.values()}
    assert states <= {"queued", "running", "success"}
    for topic, run_id in run_ids.items():
        api.wait_for_run("spotify_pipeline", run_id, timeout_s=900)
    transform_runs = transform_settled(api, known_transform)
    assert transform_runs and all(r["state"] == "success" for r in transform_runs), transform_runs

    # The stage tasks never overlapped: the pool gave the DuckDB file one writer at a time.
    spans = sorted(
        (ti["start_date"], ti["end_date"])
        for run_id in run_ids.values()
        for ti in api.task_instances("spotify_pipeline", run_id)
        if ti["task_id"] == "stage"
    )
    assert len(spans) == RUNS and all(a_end <= b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:]))

    loaded_by_stages = 0
    with duckdb.connect(str(sa.duckdb_path), read_only=True) as con:
        for topic, run_id in run_ids.items():
            stage = api.xcom("spotify_pipeline", run_id, "stage")
            bronze = committed_bronze(stack, sa.lake_prefix, topic)
            lake_ids = sorted(bronze.column("event_id").to_pylist())
            wh_ids = sorted(r[0] for r in con.execute("select event_id from bronze.spotify_events where kafka_topic = ?", [topic]).fetchall())
            assert wh_ids == lake_ids and len(lake_ids) == EVENTS  # duplicates included: bronze keeps deliveries
            # A stage loads every version pending in the lake's table, whichever run drained it.
            loaded_by_stages += stage["rows"]
            ledger_rows = con.execute("select sum(rows) from bronze._loads where table_name = 'events' and batch_id like ?", [f"{topic}+%"]).fetchone()[0]
            assert ledger_rows == len(lake_ids)
            # Silver: one row per distinct event of this topic, after dedup.
            silver = con.execute(
                """select count(*) from silver.stg_spotify__events s
                   where s.event_id in (select event_id from bronze.spotify_events where kafka_topic = ?)""",
                [topic],
            ).fetchone()[0]
            assert silver == len(set(lake_ids)) < EVENTS
    # Every run's rows were loaded once, by one stage or another.
    assert loaded_by_stages == RUNS * EVENTS
