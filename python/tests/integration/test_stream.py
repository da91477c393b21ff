"""`spotify-pipeline stream` as a service: stopped with SIGTERM, killed with kill -9 mid-flight,
restarted, reconfigured. Whatever happened, its segment log regenerates exactly what the topic
holds: the same records, byte for byte, each once, read back with an independent consumer."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from reconcile import topic_records
from spotify_pipeline import _core
from spotify_pipeline.stream import SegmentLog, segment_seed, truth

# Fast enough to have a few thousand records in flight when killed, small enough that the
# 30-minute warm-up (generated, not sent) stays near 100 k records.
RATE, SPEEDUP = 4_000, 20.0


def _start(stack, topic: str, state: Path, *extra: str) -> subprocess.Popen:
    args = [sys.executable, "-m", "spotify_pipeline.cli", "stream", "--bootstrap", stack.bootstrap, "--topic", topic,
            "--state-dir", str(state), "--rate", str(RATE), "--speedup", str(SPEEDUP), "--checkpoint-s", "1",
            "--late-rate", "0.05", "--duplicate-rate", "0.02", "--malformed-rate", "0.02", *extra]
    return subprocess.Popen(args, stderr=subprocess.PIPE, text=True)


def _entries(state: Path) -> list[dict]:
    return [json.loads(line) for line in (state / "segments.jsonl").read_text().splitlines()]


def _wait_for_sent(state: Path, at_least: int, timeout_s: float = 90) -> None:
    """Until a checkpoint of the process just started reports `at_least` records sent by it."""
    before = len(_entries(state)) if (state / "segments.jsonl").exists() else 0
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if (state / "segments.jsonl").exists() and any(e.get("sent", 0) >= at_least for e in _entries(state)[before:]):
            return
        time.sleep(0.2)
    raise TimeoutError(f"the stream did not send {at_least} records in {timeout_s}s")


def _stop(p: subprocess.Popen) -> str:
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    return err


def test_stream_survives_sigterm_kill_and_reconfiguration_and_regenerates_exactly(stack, topic, tmp_path):
    state, out = tmp_path / "state", tmp_path / "truth"
    # 1. A clean stop: the last checkpoint says so.
    p = _start(stack, topic, state)
    _wait_for_sent(state, 3_000)
    assert "cleanly" in _stop(p)
    assert _entries(state)[-1]["last"] is True
    # 2. Killed mid-flight: records past the last checkpoint are in the topic, unlogged.
    p = _start(stack, topic, state)
    _wait_for_sent(state, 3_000)
    time.sleep(0.6)
    p.kill()
    p.wait()
    assert SegmentLog(state).segments()[-1].settled is False
    # 3. Restarted: it recovers what the dead run sent, resumes the same simulation after it.
    p = _start(stack, topic, state)
    _wait_for_sent(state, 2_000)
    _stop(p)
    kinds = [e["kind"] for e in _entries(state)]
    assert kinds.count("segment") == 1 and kinds.count("recovered") == 1, kinds
    recovered = next(e for e in _entries(state) if e["kind"] == "recovered")
    assert recovered["found"] > 0
    # 4. Other settings (another seed) start a new segment where the simulated clock stopped.
    p = _start(stack, topic, state, "--seed", "7")
    _wait_for_sent(state, 1_000)
    _stop(p)
    segments = SegmentLog(state).segments()
    assert [s.segment for s in segments] == [0, 1] and segments[1].sim["seed"] == segment_seed(7, 1) != 7
    assert segments[1].sim["start_ms"] < segments[0].sim_now_ms < segments[1].sim["start_ms"] + 31 * 60_000
    # 5. Back to the first seed at another rate: a new segment, whose event ids are its own (with
    # segment 0's seed it would repeat a third of them, which silver would drop as duplicates).
    p = _start(stack, topic, state, "--rate", str(RATE // 2))
    _wait_for_sent(state, 1_000)
    _stop(p)
    segments = SegmentLog(state).segments()
    assert [s.segment for s in segments] == [0, 1, 2] and segments[2].sim["seed"] == segment_seed(segments[0].sim["seed"], 2)

    # What the topic holds, read independently, against what the log regenerates.
    records = topic_records(stack.bootstrap, topic)
    expected: Counter = Counter()
    truth_kinds: Counter = Counter()
    valid_ids: Counter = Counter()
    ids_by_segment = []
    for s in segments:
        skip = set(s.not_sent)
        sent = [(k, r) for i, (k, r) in enumerate(_core.simulate(s.sim, s.next)) if i >= s.first and i not in skip]
        expected.update(r for _, r in sent)
        truth_kinds.update(k.split(":")[0] for k, _ in sent)
        valid_ids.update(json.loads(r)["event_id"] for k, r in sent if not k.startswith("malformed"))
        ids_by_segment.append({json.loads(r)["event_id"] for k, r in sent if not k.startswith("malformed")})
    for a in range(len(segments)):
        for b in range(a + 1, len(segments)):
            assert not ids_by_segment[a] & ids_by_segment[b], f"segments {a} and {b} share event ids"
    got = Counter(value for _, _, _, value in records)
    assert sum(got.values()) == len(records) > 8_000
    # As multisets: each record as many times as the simulation sent it (its duplicate
    # deliveries are byte-identical on purpose), none lost, none twice from a restart.
    assert got == expected, f"{sum((got - expected).values())} unexpected, {sum((expected - got).values())} missing"

    # The truth files say the same, for readers that do not hold the records.
    summaries = truth(state, out)
    rows = [row for s in summaries for row in csv.DictReader(open(s["path"]))]
    assert len(rows) == len(records)
    assert Counter(r["kind"].split(":")[0] for r in rows) == truth_kinds
    assert Counter(r["event_id"] for r in rows if r["event_id"]) == valid_ids


def test_truth_refuses_a_log_whose_tail_is_not_recovered(stack, topic, tmp_path):
    state = tmp_path / "state"
    p = _start(stack, topic, state)
    _wait_for_sent(state, 1_000)
    p.kill()
    p.wait()
    try:
        truth(state, tmp_path / "truth")
    except ValueError as e:
        assert "did not stop cleanly" in str(e)
    else:
        raise AssertionError("truth accepted a log with an unrecovered tail")
    # Up to the last checkpoint, on request (a running stream's view).
    assert truth(state, tmp_path / "truth", running=True)[0]["records"] >= 1_000

