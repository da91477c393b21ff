"""Ingest on arrival, in real `airflow standalone` (scheduler, triggerer, dag-processor): records
produced outside Airflow, as an app would, make the AssetWatcher's trigger fire in the triggerer;
the event runs `spotify_ingest`, which drains and stages them (its fallback cron may run it too).
Reconciled by (partition, offset) in the lake and the warehouse."""

from __future__ import annotations

import time

import duckdb
import pytest

from reconcile import committed_bronze
from spotify_pipeline import _core
from standalone import airflow_standalone  # noqa: F401  (the session fixture)

pytestmark = pytest.mark.e2e

SIM = {"seed": 901, "start_ms": 1_772_323_200_000, "users": 200, "songs": 500}
# A small stream: 1,000 events every 2 s, below the DAG's MIN_LAG, so its age (10 s) fires it.
BURST, EVERY_S = 1_000, 2.0


def settled(api, kafka: dict, lake: dict, timeout_s: float = 600) -> list[dict]:
    """Waits until nothing waits in Kafka and every run of the ingest DAG, and of the transform
    its stages schedule, has ended, twice in a row 10 s apart (a watcher may fire once more for
    the last records, and the next test must not meet a run of this one); returns the ingest runs."""
    deadline, quiet = time.monotonic() + timeout_s, 0
    while time.monotonic() < deadline:
        runs = {d: api.runs(d) for d in ("spotify_ingest", "spotify_transform")}
        ended = all(r["state"] in ("success", "failed") for rs in runs.values() for r in rs)
        quiet = quiet + 1 if ended and _core.lag(kafka, lake)["lag"] == 0 else 0
        if quiet == 2:
            return runs["spotify_ingest"]
        time.sleep(10)
    raise AssertionError(f"the ingest did not settle in {timeout_s} s: {api.runs('spotify_ingest')}")


def test_records_that_arrive_run_the_ingest_dag_through_its_watcher(airflow_standalone, stack):  # noqa: F811
    sa = airflow_standalone
    api = sa.api()
    topic = sa.env["SPOTIFY_INGEST_TOPIC"]
    kafka, lake = stack.kafka(topic), stack.lake(sa.lake_prefix)
    api.wait_for_dag("spotify_ingest")
    produced = [_core.produce(kafka, SIM, {"count": BURST})]
    api.unpause("spotify_ingest")
    try:
        # Events keep arriving, as from an app, until the watcher has run the DAG once.
        deadline = time.monotonic() + 240
        while not any(r["run_type"] == "asset_triggered" for r in api.runs("spotify_ingest")):
            assert time.monotonic() < deadline, f"no asset-triggered run in 240 s: {api.runs('spotify_ingest')}"
            produced.append(_core.produce(kafka, {**SIM, "seed": SIM["seed"] + len(produced)}, {"count": BURST}))
            time.sleep(EVERY_S)
        runs = settled(api, kafka, lake)
    finally:
        api.request("PATCH", "/dags/spotify_ingest", json={"is_paused": True})
    assert all(r["state"] == "success" for r in runs), runs
    assert {r["run_type"] for r in runs} <= {"asset_triggered", "scheduled"}

    # Every record of the topic, once, in the lake and in the warehouse, whichever run took it.
    ends: dict[int, int] = {}
    for s in produced:
        for p in s["partitions"]:
            ends[p["partition"]] = max(ends.get(p["partition"], 0), p["last_offset"] + 1)
    events = sum(s["events"] for s in produced)
    assert sum(ends.values()) == events
    bronze = committed_bronze(stack, sa.lake_prefix, topic)
    offsets = list(zip(bronze.column("kafka_partition").to_pylist(), bronze.column("kafka_offset").to_pylist()))
    assert len(offsets) == len(set(offsets)) and set(offsets) == {(p, o) for p, end in ends.items() for o in range(end)}
    with duckdb.connect(str(sa.duckdb_path), read_only=True) as con:
        rows = con.execute(
            "select count(*), count(distinct (kafka_partition, kafka_offset)) from bronze.spotify_events where kafka_topic = ?", [topic]
        ).fetchone()
    assert rows == (events, events)
