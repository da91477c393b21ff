"""Exactly-once draining, whatever kills it: kill -9 at random moments, MinIO and the broker
restarted mid-drain. After re-runs, every produced (partition, offset) is in the committed bronze
files exactly once."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reconcile import committed_bronze, duplicates, manifests
from spotify_pipeline import _core

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
SIM = {"seed": 21, "start_ms": 1_772_323_200_000, "users": 2_000, "songs": 2_000}
# Small batches: many commits per second, so kills land between and inside them.
DRAIN = {"group_id": "kill-tests", "dataset": "spotify_events", "batch_max_records": 1_000, "batch_max_bytes": 64 << 20, "idle_timeout_s": 60}
DRAIN_SCRIPT = "import json, sys\nfrom spotify_pipeline import _core\n_core.drain(*(json.loads(a) for a in sys.argv[1:4]))\n"


def start_drain(stack, topic, lake_prefix) -> subprocess.Popen:
    args = [json.dumps(stack.kafka(topic)), json.dumps(stack.lake(lake_prefix)), json.dumps(DRAIN)]
    return subprocess.Popen([sys.executable, "-c", DRAIN_SCRIPT, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def assert_exactly_once(stack, topic, lake_prefix, produced: list[dict]) -> None:
    bronze = committed_bronze(stack, lake_prefix, topic)
    coords = list(zip(bronze.column("kafka_partition").to_pylist(), bronze.column("kafka_offset").to_pylist()))
    assert duplicates(coords) == {}, "an offset is in bronze twice"
    expected = {(p["partition"], o) for s in produced for p in s["partitions"] for o in range(p["first_offset"], p["last_offset"] + 1)}
    assert set(coords) == expected, f"{len(expected - set(coords))} offsets missing, {len(set(coords) - expected)} unexpected"
    # The manifests tile each partition's offsets with no gap and no overlap.
    by_partition: dict[int, list[dict]] = {}
    for m in manifests(stack, lake_prefix, topic):
        by_partition.setdefault(m["partition"], []).append(m)
    for ms in by_partition.values():
        ms.sort(key=lambda m: m["start_offset"])
        assert all(a["end_offset"] + 1 == b["start_offset"] for a, b in zip(ms, ms[1:]))


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
        n = len(manifests(stack, lake_prefix, topic))
        grew += n > commits_seen
        commits_seen = n
    assert grew >= 10, "most kills should come after some progress, or the test proves little"
    final = _core.drain(stack.kafka(topic), stack.lake(lake_prefix), DRAIN)
    assert all(p["lag"] == 0 for p in final["partitions"])
    assert_exactly_once(stack, topic, lake_prefix, produced)


@pytest.mark.parametrize("server", ["minio", "kafka"])
def test_a_server_restarted_mid_drain_loses_and_repeats_nothing(stack, topic, lake_prefix, server):
    produced = [_core.produce(stack.kafka(topic), SIM, {"count": 150_000})]
    proc = start_drain(stack, topic, lake_prefix)
    time.sleep(1.0)
    assert proc.poll() is None, "the drain finished before the restart; raise the backlog"
    subprocess.run([str(ROOT / "scripts" / "stack.sh"), f"restart-{server}"], check=True, timeout=180)
    proc.wait(timeout=180)
    # It either rode out the restart or failed cleanly; a re-run finishes the job either way.
    final = _core.drain(stack.kafka(topic), stack.lake(lake_prefix), DRAIN)
    assert all(p["lag"] == 0 for p in final["partitions"])
    assert_exactly_once(stack, topic, lake_prefix, produced)
