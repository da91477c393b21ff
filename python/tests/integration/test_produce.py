"""Simulating and producing on the real stack: fault injection reconciled through the drain,
pacing and bounds, reference data in the lake, and the command line."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter

import pytest

import spotify_pipeline as sp
from reconcile import committed_bronze, quarantined
from spotify_pipeline import _core

pytestmark = pytest.mark.integration

SIM = {"seed": 5, "start_ms": 1_772_323_200_000, "users": 300, "songs": 1_000}
DRAIN = {"group_id": "tests", "dataset": "spotify_events", "batch_max_records": 5_000, "batch_max_bytes": 64 << 20, "idle_timeout_s": 30}


def test_injected_faults_reconcile_through_the_drain(stack, topic, lake_prefix):
    n = 20_000
    sim = {**SIM, "faults": {"late_rate": 0.03, "max_late_ms": 3_600_000, "duplicate_rate": 0.03, "malformed_rate": 0.02}}
    produced = _core.produce(stack.kafka(topic), sim, {"count": n})
    truth = produced["sim"]
    assert truth["records"] == n and truth["valid"] + truth["malformed"] == n
    assert min(truth["duplicates"], truth["late"], truth["malformed"]) > 0

    drained = _core.drain(stack.kafka(topic), stack.lake(lake_prefix), DRAIN)
    assert drained["rows"] == truth["valid"]
    assert drained["quarantined_by_reason"] == truth["malformed_by_class"]

    records = _core.simulate(sim, n)
    bronze_ids = Counter(committed_bronze(stack, lake_prefix, topic).column("event_id").to_pylist())
    assert bronze_ids == Counter(json.loads(r)["event_id"] for k, r in records if not k.startswith("malformed"))
    assert sum(bronze_ids.values()) - len(bronze_ids) == truth["duplicates"]
    q = Counter(r["reason"] for r in quarantined(stack, lake_prefix, topic))
    assert q == Counter({k: v for k, v in truth["malformed_by_class"].items()})


def test_pacing_and_bounds(stack, topic):
    started = time.monotonic()
    paced = _core.produce(stack.kafka(topic), SIM, {"count": 1_500, "rate_per_s": 1_000})
    assert paced["events"] == 1_500
    assert time.monotonic() - started >= 1.4  # 1,500 events at 1,000/s cannot finish sooner
    bounded = _core.produce(stack.kafka(topic), SIM, {"count": None, "duration_s": 1.0, "rate_per_s": 300})
    assert 1 <= bounded["events"] <= 301
    # A simulated hour per wall second: the records' simulated span bounds the wall time.
    started = time.monotonic()
    sped = _core.produce(stack.kafka(topic), SIM, {"count": 3_000, "speedup": 3_600 * 4})
    sim_span_s = (sped["sim"]["last_event_ms"] - sped["sim"]["first_event_ms"]) / 1000
    assert time.monotonic() - started >= sim_span_s / (3_600 * 4) * 0.9
    with pytest.raises(sp.KafkaError, match="does not exist"):
        _core.produce(stack.kafka("no_such_topic_here"), SIM, {"count": 1, "create_topic": False})
    with pytest.raises(Exception, match="count, a duration_s"):
        _core.produce(stack.kafka(topic), SIM, {"count": None})
    with pytest.raises(Exception, match="not both"):
        _core.produce(stack.kafka(topic), SIM, {"count": 1, "rate_per_s": 1, "speedup": 1})


def test_reference_data_is_published_once_as_delta_tables(stack, lake_prefix):
    from delta_reader import S3Store, load_snapshot, read_table

    first = _core.publish_reference(SIM, stack.lake(lake_prefix))
    catalog = f"{2026}-{SIM['songs']}-{SIM['users']}"
    assert {t["table"]: (t["catalog"], t["published"]) for t in first["tables"]} == {
        name: (catalog, True) for name in ("songs", "artists", "users", "subscriptions")
    }
    # Read back by the independent reader: one file per table, partitioned by catalog.
    store = S3Store(stack.s3(), stack.bucket, lake_prefix)
    songs = read_table(store, "reference/songs")
    users = read_table(store, "reference/users")
    assert songs.num_rows == SIM["songs"] and users.num_rows == SIM["users"]
    assert set(songs.column("catalog").to_pylist()) == {catalog}
    assert {"song_id", "artist_id", "genre", "release_date", "is_new_release"} <= set(songs.column_names)
    # Every song an event names is in the reference table, with the same artist.
    ref = dict(zip(songs.column("song_id").to_pylist(), songs.column("artist_id").to_pylist()))
    for _, r in _core.simulate(SIM, 2_000):
        e = json.loads(r)
        assert ref[e["song_id"]] == e["artist_id"]
    # Publishing again adds nothing: the catalog's txn says it is there.
    version = load_snapshot(store, "reference/songs").version
    again = _core.publish_reference(SIM, stack.lake(lake_prefix))
    assert [t["published"] for t in again["tables"]] == [False] * 4
    assert load_snapshot(store, "reference/songs").version == version
    assert read_table(store, "reference/songs").num_rows == SIM["songs"]


def test_command_line_producer(stack, topic):
    r = subprocess.run(
        [sys.executable, "-m", "spotify_pipeline.cli", "produce", "--bootstrap", stack.bootstrap, "--topic", topic,
         "--events", "2500", "--duplicate-rate", "0.1", "--seed", "3"],
        capture_output=True, text=True, timeout=120,
    )
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["events"] == 2_500 and summary["sim"]["duplicates"] > 0
    assert "produce: 2,500/2,500 (100.0%)" in r.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "spotify_pipeline.cli", "produce", "--bootstrap", "127.0.0.1:1", "--timeout-s", "3", "--events", "5"],
        capture_output=True, text=True, timeout=60,
    )
    assert bad.returncode == 3 and "Kafka is unreachable" in bad.stderr  # 3: a service unreachable
