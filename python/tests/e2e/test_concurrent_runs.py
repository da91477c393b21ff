"""Three runs of the ingest DAG at once, in real `airflow standalone` (scheduler, LocalExecutor,
triggerer, PARALLELISM=4), against one DuckDB file, two of them on one topic: the one-slot pool
serializes the warehouse's writers, the runs on the shared topic drain and stage each other's
records without waiting for them, every run succeeds, and every layer reconciles by
(partition, offset) and by event_id for each topic."""

from __future__ import annotations

import time
import uuid

import duckdb
import pytest

from reconcile import committed_bronze
from standalone import airflow_standalone  # noqa: F401  (the session fixture)

pytestmark = pytest.mark.e2e

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


def test_three_runs_at_once_two_on_one_topic_share_one_duckdb_file(airflow_standalone, stack):  # noqa: F811
    sa = airflow_standalone
    api = sa.api()
    for dag_id in ("spotify_pipeline", "spotify_transform"):
        api.wait_for_dag(dag_id)
        api.unpause(dag_id)
    known_transform = {r["dag_run_id"] for r in api.runs("spotify_transform")}

    shared, own = (f"concurrent_{uuid.uuid4().hex[:8]}_{name}" for name in ("shared", "own"))
    topics = {shared: 2, own: 1}  # runs per topic
    run_topics = [shared, shared, own]
    run_ids = [
        api.trigger("spotify_pipeline", {"events": EVENTS, "seed": 700 + i, "topic": topic, "drain_tasks": 2, "duplicate_rate": 0.02})
        for i, topic in enumerate(run_topics)
    ]
    # All three are admitted at once (max_active_runs=3); the pool orders their stage tasks.
    time.sleep(5)
    states = {api.run("spotify_pipeline", r)["state"] for r in run_ids}
    assert states <= {"queued", "running", "success"}
    # A run whose records the other run on its topic drained (or whose batches another run's
    # stage loaded) stops waiting at once; before, it waited for its sensor's 3600 s timeout.
    for run_id in run_ids:
        api.wait_for_run("spotify_pipeline", run_id, timeout_s=900)
    transform_runs = transform_settled(api, known_transform)
    assert transform_runs and all(r["state"] == "success" for r in transform_runs), transform_runs

    # The stage tasks never overlapped: the pool gave the DuckDB file one writer at a time.
    spans = sorted(
        (ti["start_date"], ti["end_date"])
        for run_id in run_ids
        for ti in api.task_instances("spotify_pipeline", run_id)
        if ti["task_id"] == "stage"
    )
    assert len(spans) == len(run_ids) and all(a_end <= b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:]))

    # What each topic's producers wrote per partition (two producers interleave their records in a
    # partition of the fresh topic, so it holds offsets 0 to their count), and what each run's
    # drain tasks (two, mapped) committed.
    produced: dict[str, dict[int, int]] = {t: {} for t in topics}
    ends: dict[str, dict[int, int]] = {t: {} for t in topics}
    drained: dict[str, int] = {t: 0 for t in topics}
    for topic, run_id in zip(run_topics, run_ids):
        for p in api.xcom("spotify_pipeline", run_id, "produce")["partitions"]:
            produced[topic][p["partition"]] = produced[topic].get(p["partition"], 0) + p["count"]
            ends[topic][p["partition"]] = max(ends[topic].get(p["partition"], 0), p["last_offset"] + 1)
        drained[topic] += sum(api.xcom("spotify_pipeline", run_id, "drain", map_index=i)["rows"] for i in range(2))
    assert ends == produced

    loaded_by_stages = sum(api.xcom("spotify_pipeline", run_id, "stage")["rows"] for run_id in run_ids)
    with duckdb.connect(str(sa.duckdb_path), read_only=True) as con:
        for topic, runs in topics.items():
            bronze = committed_bronze(stack, sa.lake_prefix, topic)
            # Bronze: every offset the topic's runs produced, once, whichever run drained it.
            offsets = list(zip(bronze.column("kafka_partition").to_pylist(), bronze.column("kafka_offset").to_pylist()))
            assert len(offsets) == len(set(offsets))
            assert set(offsets) == {(p, o) for p, n in produced[topic].items() for o in range(n)}
            assert drained[topic] == len(offsets) == runs * EVENTS
            lake_ids = sorted(bronze.column("event_id").to_pylist())
            wh_ids = sorted(r[0] for r in con.execute("select event_id from bronze.spotify_events where kafka_topic = ?", [topic]).fetchall())
            assert wh_ids == lake_ids  # duplicates included: bronze keeps deliveries
            wh_offsets = con.execute(
                "select count(*), count(distinct (kafka_partition, kafka_offset)) from bronze.spotify_events where kafka_topic = ?", [topic]
            ).fetchone()
            assert wh_offsets == (runs * EVENTS, runs * EVENTS)
            ledger_rows = con.execute("select sum(rows) from bronze._loads where table_name = 'events' and batch_id like ?", [f"{topic}+%"]).fetchone()[0]
            assert ledger_rows == len(lake_ids)
            # Silver: one row per distinct event of this topic, after dedup.
            silver = con.execute(
                """select count(*) from silver.stg_spotify__events s
                   where s.event_id in (select event_id from bronze.spotify_events where kafka_topic = ?)""",
                [topic],
            ).fetchone()[0]
            assert silver == len(set(lake_ids)) < runs * EVENTS
    # Every run's rows were loaded once, by one stage or another.
    assert loaded_by_stages == len(run_ids) * EVENTS
