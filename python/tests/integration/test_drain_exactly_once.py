"""Exactly-once draining, whatever kills it and however many drains race: kill -9 at random
moments, MinIO and the broker restarted mid-drain, three drains at once on one topic. After
re-runs, every produced (partition, offset) is in the bronze Delta table exactly once, read by an
independent reader of `_delta_log` (tests/delta_reader.py), not by delta-rs."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reconcile import bronze_commits, committed_bronze, duplicates, quarantined, txn_versions
from spotify_pipeline import _core

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
SIM = {"seed": 21, "start_ms": 1_772_323_200_000, "users": 2_000, "songs": 2_000}
# Small batches: many commits per second, so kills land between and inside them.
DRAIN = {"group_id": "kill-tests", "batch_max_records": 1_000, "batch_max_bytes": 64 << 20, "idle_timeout_s": 60, "commit_interval_ms": 100}
# Prints only the counts: the whole summary (every file key) could fill the pipe and block the
# drain at exit while the test waits for it.
# An optional fourth argument is a wall-clock start: drains started one after another (each
# import takes ~1 s) begin together, so they really race for the first commit on each partition.
DRAIN_SCRIPT = (
    "import json, sys, time\nfrom spotify_pipeline import _core\n"
    "time.sleep(max(0.0, float(sys.argv[4]) - time.time())) if len(sys.argv) > 4 else None\n"
    "s = _core.drain(*(json.loads(a) for a in sys.argv[1:4]))\n"
    "print(json.dumps({k: s[k] for k in ('rows', 'quarantined', 'commits')}))\n"
)


def start_drain(stack, topic, lake_prefix, start_at: float | None = None, **options) -> subprocess.Popen:
    args = [json.dumps(stack.kafka(topic)), json.dumps(stack.lake(lake_prefix)), json.dumps({**DRAIN, **options})]
    args += [] if start_at is None else [str(start_at)]
    return subprocess.Popen([sys.executable, "-c", DRAIN_SCRIPT, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def assert_exactly_once(stack, topic, lake_prefix, produced: list[dict]) -> None:
    bronze = committed_bronze(stack, lake_prefix, topic)
    coords = list(zip(bronze.column("kafka_partition").to_pylist(), bronze.column("kafka_offset").to_pylist()))
    assert duplicates(coords) == {}, "an offset is in bronze twice"
    expected = {(p["partition"], o) for s in produced for p in s["partitions"] for o in range(p["first_offset"], p["last_offset"] + 1)}
    assert set(coords) == expected, f"{len(expected - set(coords))} offsets missing, {len(set(coords) - expected)} unexpected"
    # Each partition's txn is its high watermark, and every commit moved it forward.
    ends = {p["partition"]: p["last_offset"] + 1 for s in produced for p in s["partitions"]}
    assert txn_versions(stack, lake_prefix) == {f"{topic}/{p}": max(e for q, e in ends.items() if q == p) for p in ends}
    seen: dict[str, int] = {}
    for version, actions in bronze_commits(stack, lake_prefix):
        for a in actions:
            if "txn" in a:
                app, v = a["txn"]["appId"], a["txn"]["version"]
                assert v > seen.get(app, -1), f"version {version} moved {app} back to {v}"
                seen[app] = v


def test_twenty_kill9s_then_rerun_leave_every_offset_exactly_once(stack, topic, lake_prefix):
    produced = [_core.produce(stack.kafka(topic), SIM, {"count": 300_000})]
    rng = random.Random(20261124)
    kills, commits_seen, grew = 0, 0, 0
    while kills < 20:
        proc = start_drain(stack, topic, lake_prefix)
        time.sleep(rng.uniform(0.4, 1.6))
        if proc.poll() is None:
            proc.kill()
            proc.wait()
            kills += 1
        else:
            assert proc.returncode == 0, proc.stderr.read().decode()[-2000:]
            # It finished: give the next run a backlog to be killed in.
            produced.append(_core.produce(stack.kafka(topic), {**SIM, "seed": 100 + kills}, {"count": 100_000}))
        n = len(bronze_commits(stack, lake_prefix))
        grew += n > commits_seen
        commits_seen = n
    assert grew >= 10, "most kills should come after some progress, or the test proves little"
    final = _core.drain(stack.kafka(topic), stack.lake(lake_prefix), DRAIN)
    assert all(p["lag"] == 0 for p in final["partitions"])
    assert_exactly_once(stack, topic, lake_prefix, produced)


@pytest.mark.parametrize("server", ["minio", "kafka"])
def test_a_server_restarted_mid_drain_loses_and_repeats_nothing(stack, topic, lake_prefix, server):
    produced = [_core.produce(stack.kafka(topic), SIM, {"count": 800_000})]
    proc = start_drain(stack, topic, lake_prefix)
    time.sleep(1.0)
    assert proc.poll() is None, "the drain finished before the restart; raise the backlog"
    subprocess.run([str(ROOT / "scripts" / "stack.sh"), f"restart-{server}"], check=True, timeout=180)
    proc.wait(timeout=180)
    # It either rode out the restart or failed cleanly; a re-run finishes the job either way.
    final = _core.drain(stack.kafka(topic), stack.lake(lake_prefix), DRAIN)
    assert all(p["lag"] == 0 for p in final["partitions"])
    assert_exactly_once(stack, topic, lake_prefix, produced)


def test_three_drains_racing_on_one_topic_commit_every_offset_once(stack, topic, lake_prefix, tmp_path):
    """Three drains at once on the same partitions, each cutting its own batches: every range is
    committed by exactly one of them (the others leave the partition), in both tables; then a
    stage loads the warehouse with every offset once."""
    sim = {**SIM, "faults": {"malformed_rate": 0.01}}
    produced: list[dict] = []
    raced = []
    # Who wins a partition is timing: the drain that commits there first. Up to three rounds, each
    # on 400,000 more records, until one was a race (more than one drain committed ranges, some
    # left partitions to others); every round must be exactly once whatever the timing was.
    for round_ in range(3):
        produced.append(_core.produce(stack.kafka(topic), {**sim, "seed": sim["seed"] + round_}, {"count": 400_000}))
        start_at = time.time() + 5
        procs = [start_drain(stack, topic, lake_prefix, start_at, batch_max_records=n, group_id=f"race-{n}") for n in (700, 1_300, 2_900)]
        summaries = []
        for p in procs:
            out, err = p.communicate(timeout=300)
            assert p.returncode == 0, err.decode()[-2000:]
            summaries.append(json.loads(out))
        raced.append([s["rows"] for s in summaries])
        # Whatever the race left, a last drain has nothing more to do, or finishes the job.
        _core.drain(stack.kafka(topic), stack.lake(lake_prefix), DRAIN)
        bronze = committed_bronze(stack, lake_prefix, topic)
        refused = quarantined(stack, lake_prefix, topic)
        coords = list(zip(bronze.column("kafka_partition").to_pylist(), bronze.column("kafka_offset").to_pylist()))
        coords += [(r["kafka_partition"], r["kafka_offset"]) for r in refused]
        assert duplicates(coords) == {}, "an offset is in bronze or quarantine twice"
        expected = {(p["partition"], o) for s in produced for p in s["partitions"] for o in range(p["first_offset"], p["last_offset"] + 1)}
        assert set(coords) == expected
        assert len(refused) == sum(s["sim"]["malformed"] for s in produced), "every malformed record is quarantined once"
        assert sum(s["rows"] + s["quarantined"] for s in summaries) <= 400_000, "the drains together committed no offset twice"
        if sum(rows > 0 for rows in raced[-1]) >= 2:
            break
    assert sum(rows > 0 for rows in raced[-1]) >= 2, f"no round was a race: rows per drain {raced}"

    # The warehouse gets every (partition, offset) once.
    import duckdb
    from spotify_pipeline.operators.stage import StageToWarehouseOperator

    db = tmp_path / "wh.duckdb"
    import os
    os.environ["AIRFLOW_CONN_LAKE_RACE"] = json.dumps({"conn_type": "aws", "login": stack.access_key, "password": stack.secret_key, "extra": {"endpoint_url": stack.s3_endpoint}})
    os.environ["AIRFLOW_CONN_DUCKDB_RACE"] = json.dumps({"conn_type": "duckdb", "extra": {"path": str(db)}})
    stage = StageToWarehouseOperator(task_id="stage", lake_url=stack.lake(lake_prefix)["url"], lake_conn_id="lake_race", warehouse_conn_id="duckdb_race", load_reference=False)
    stage.execute(context={})
    assert stage.execute(context={})["files"] == 0, "a second stage loads nothing"
    with duckdb.connect(str(db), read_only=True) as con:
        loaded = con.execute("select kafka_partition, kafka_offset from bronze.spotify_events").fetchall()
        loaded += con.execute("select kafka_partition, kafka_offset from bronze.spotify_events_quarantine").fetchall()
    assert duplicates(loaded) == {} and set(loaded) == expected


def test_drains_bounded_by_records_take_exactly_that_many_and_leave_the_rest_to_the_next(stack, topic, lake_prefix):
    """`max_records` stops a drain mid-fetch (the consumer takes ~1,000 records from librdkafka at a
    time): the records it read past the bound are in no batch, and the next drain starts at them."""
    produced = [_core.produce(stack.kafka(topic), SIM, {"count": 20_000})]
    drained = [_core.drain(stack.kafka(topic), stack.lake(lake_prefix), {**DRAIN, "max_records": n})["rows"] for n in (1, 2_345, 7_000)]
    assert drained == [1, 2_345, 7_000]
    assert committed_bronze(stack, lake_prefix, topic).num_rows == 9_346
    final = _core.drain(stack.kafka(topic), stack.lake(lake_prefix), DRAIN)
    assert final["rows"] == 20_000 - 9_346 and all(p["lag"] == 0 for p in final["partitions"])
    assert_exactly_once(stack, topic, lake_prefix, produced)


def test_drains_mapped_over_partition_shares_take_disjoint_sets_and_an_empty_share_is_skipped(stack, topic, lake_prefix, monkeypatch):
    """`partition_share=[i, n]` (how spotify_ingest maps its drains with no planning task): each
    task asks the broker for the topic's partitions and takes the i-th round-robin set. Three
    shares of a 3-partition topic drain disjoint partitions; a fourth share of four is empty and
    skipped, since an empty partition list would mean every partition."""
    from airflow.sdk.exceptions import AirflowSkipException

    from spotify_pipeline.operators.drain import KafkaDrainOperator

    monkeypatch.setenv("AIRFLOW_CONN_KAFKA_SHARE", json.dumps({"conn_type": "kafka", "extra": {"bootstrap.servers": stack.bootstrap}}))
    monkeypatch.setenv("AIRFLOW_CONN_LAKE_SHARE", json.dumps({
        "conn_type": "aws", "login": stack.access_key, "password": stack.secret_key, "extra": {"endpoint_url": stack.s3_endpoint},
    }))
    produced = [_core.produce(stack.kafka(topic), SIM, {"count": 6_000, "partitions": 3})]

    def share(i, n):
        return KafkaDrainOperator(task_id=f"drain_{i}", kafka_conn_id="kafka_share", lake_conn_id="lake_share", topic=topic,
                                  lake_url=stack.lake(lake_prefix)["url"], partition_share=[i, n]).execute(context={})

    summaries = [share(i, 4) for i in range(3)]
    assert [[p["partition"] for p in s["partitions"]] for s in summaries] == [[0], [1], [2]]
    with pytest.raises(AirflowSkipException, match="empty"):
        share(3, 4)
    assert sum(s["rows"] for s in summaries) == 6_000
    assert_exactly_once(stack, topic, lake_prefix, produced)
    with pytest.raises(ValueError, match="index < count"):
        share(2, 2)
    with pytest.raises(ValueError, match="not both"):
        KafkaDrainOperator(task_id="d", topic=topic, lake_url="file:///x", partitions=[0], partition_share=[0, 2])
