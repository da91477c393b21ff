"""The simulator as an always-on source (``spotify-pipeline stream``), and its segment log: what
lets a restart resume where the stream stopped, and any run's ground truth be regenerated.

The log, ``<state_dir>/segments.jsonl``, is appended and fsynced, one JSON object a line:

- ``{"kind": "segment", "segment": 0, "sim": {...}, "speedup": 1.0, "topic": ...}``: a simulation
  (its seed, its simulated start, the rest of its settings) that the stream produces from.
- ``{"kind": "checkpoint", "segment": 0, "first_sent": W, "next": N, "offsets": [...], ...}``:
  every record of the segment before ``N`` is acknowledged by the broker, except those before
  the segment's first ``first_sent`` (a warm-up, generated and never sent). ``"last": true``
  marks a clean stop.
- ``{"kind": "recovered", "segment": 0, "next": K, "not_sent": [...], "found": n}``: after an
  unclean stop (kill -9, a crash), what the topic held past the last checkpoint, matched to the
  simulation by the core (``_core.recover_stream``).

Segment 0 simulates with the stream's seed; segment ``n`` with one derived from it and ``n``
(``segment_seed``). Event ids come from the seed alone, not the simulated start: two segments of
seed 7 that began 3 hours apart shared 7,309 of 20,000 event ids, which silver would have taken
for duplicate deliveries and dropped.

A segment's ground truth is its records ``[first, next)`` less every ``not_sent``: the core
generates them again (``_core.write_truth``), since a simulation is deterministic.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spotify_pipeline import _core

LOG_NAME = "segments.jsonl"
# A new stream starts its simulation this long before now and sends from now: sessions are then
# already in progress, as in a real service (a session is ~25 simulated minutes: ~6.7 songs).
WARM_UP_MS = 30 * 60_000
# In real time, a stream that was down for longer than this starts a new segment at now rather
# than sending everything it missed at once (as apps that were offline for a moment would).
MAX_CATCH_UP_MS = 60 * 60_000


@dataclass
class Segment:
    """One simulation of the stream, as its log records it."""

    segment: int
    sim: _core.SimConfig
    speedup: float
    topic: str
    first: int | None = None
    next: int = 0
    not_sent: list[int] = field(default_factory=list)
    offsets: list[_core.PartitionOffset] = field(default_factory=list)
    sim_now_ms: int | None = None
    # The last line is a clean stop or a recovery: nothing reached Kafka past `next`.
    settled: bool = True


class SegmentLog:
    """The stream's state directory: reads and appends ``segments.jsonl``."""

    def __init__(self, state_dir: str | os.PathLike[str]):
        self.dir = Path(state_dir)
        self.path = self.dir / LOG_NAME

    def segments(self) -> list[Segment]:
        out: list[Segment] = []
        if not self.path.exists():
            return out
        lines = self.path.read_text().splitlines()
        for n, line in enumerate(lines):
            try:
                e = json.loads(line)
            except json.JSONDecodeError:
                if n == len(lines) - 1:
                    break  # torn by a kill during the write: that entry never happened
                raise ValueError(f"{self.path}:{n + 1} is not JSON") from None
            if e["kind"] == "segment":
                out.append(Segment(e["segment"], e["sim"], e["speedup"], e["topic"]))
                continue
            s = out[-1]
            if e["segment"] != s.segment:
                raise ValueError(f"{self.path}:{n + 1} belongs to segment {e['segment']}, not {s.segment}")
            s.next = e["next"]
            if e["kind"] == "checkpoint":
                if s.first is None:
                    s.first = e["first_sent"]
                s.offsets, s.sim_now_ms, s.settled = e["offsets"], e["sim_now_ms"], e["last"]
            elif e["kind"] == "recovered":
                s.not_sent.extend(e["not_sent"])
                s.sim_now_ms = e["sim_now_ms"] if e["sim_now_ms"] is not None else s.sim_now_ms
                s.settled = True
        return out

    def append(self, entry: dict[str, Any]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as f:
            f.write(json.dumps(entry, separators=(",", ":")) + "\n")
            f.flush()
            os.fsync(f.fileno())


def rate_to_sessions(sim: _core.SimConfig, events_per_s: float, speedup: float) -> float:
    """The ``sessions_per_user_per_day`` at which the simulation averages ``events_per_s`` of
    wall-clock time at ``speedup`` (over a day: the daily cycle moves it by hour)."""
    n = 1_000_000
    sim_events_per_s = n / (_core.estimated_span_ms(sim, n) / 1000)
    return sim["sessions_per_user_per_day"] * events_per_s / (sim_events_per_s * speedup)


def segment_seed(seed: int, segment: int) -> int:
    """The seed that segment ``segment`` of a stream of ``seed`` simulates with (63 bits, so any
    JSON reader holds it exactly)."""
    if segment == 0:
        return seed
    digest = hashlib.blake2b(f"{seed}/{segment}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") & (2**63 - 1)


def _world(sim: _core.SimConfig) -> dict[str, object]:
    """A simulation's settings less its start: what decides whether a restart continues it."""
    return {k: v for k, v in sim.items() if k != "start_ms"}


def recover(log: SegmentLog, kafka: _core.KafkaConfig) -> Segment | None:
    """If the stream's last run stopped uncleanly, finds what reached the topic past its last
    checkpoint and logs it. Returns the last segment."""
    segments = log.segments()
    if not segments:
        return None
    s = segments[-1]
    if not s.settled:
        found = _core.recover_stream({**kafka, "topic": s.topic}, s.sim, s.next, s.offsets)
        log.append({"kind": "recovered", "segment": s.segment, **found})
        s = log.segments()[-1]
    return s


def run(
    kafka: _core.KafkaConfig,
    sim: _core.SimConfig,
    state_dir: str | os.PathLike[str],
    *,
    speedup: float = 1.0,
    start_ms: int | None = None,
    options: _core.StreamOptions | None = None,
    progress: _core.ProgressCallback | None = None,
    now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
) -> _core.Checkpoint:
    """Streams ``sim`` to ``kafka["topic"]`` until ``options["duration_s"]`` or a stop request
    (an exception raised by ``progress``, KeyboardInterrupt included), resuming the log's last
    segment when its settings are the same. Returns the last checkpoint."""
    log = SegmentLog(state_dir)
    last = recover(log, kafka)
    now = now_ms()
    resume = (
        last is not None
        and last.first is not None
        and last.topic == kafka["topic"]
        and last.speedup == speedup
        and _world(last.sim) == _world({**sim, "seed": segment_seed(sim["seed"], last.segment)})
        and start_ms is None
        and not (speedup == 1.0 and now - (last.sim_now_ms or 0) > MAX_CATCH_UP_MS)
    )
    opts: _core.StreamOptions = {**(options or {}), "speedup": speedup}
    if resume:
        assert last is not None
        seg = last
        opts.update({"resume_at": seg.next, "send_from_ms": None})
        sim_at = seg.sim_now_ms if seg.sim_now_ms is not None else seg.sim["start_ms"]
    else:
        if start_ms is None:
            # Real time starts now; faster than that needs a past to run through.
            start_ms = now if speedup == 1.0 else (last.sim_now_ms + 1 if last and last.sim_now_ms else now - 86_400_000)
        n = (last.segment + 1) if last else 0
        seg = Segment(n, {**sim, "seed": segment_seed(sim["seed"], n), "start_ms": start_ms - WARM_UP_MS}, speedup, kafka["topic"])
        log.append({"kind": "segment", "segment": seg.segment, "sim": seg.sim, "speedup": speedup, "topic": seg.topic})
        opts.update({"resume_at": 0, "send_from_ms": start_ms})
        sim_at = start_ms
    # Real time: the simulated clock is the wall clock. Faster: from here, at the speed-up.
    opts["anchor"] = None if speedup == 1.0 else [sim_at, now]

    def checkpoint(c: _core.Checkpoint) -> None:
        log.append({"kind": "checkpoint", "segment": seg.segment, **c})

    return _core.stream(kafka, seg.sim, opts, checkpoint, progress)


def truth(state_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str], *, running: bool = False) -> list[dict[str, Any]]:
    """Regenerates the ground truth of every segment as ``<out_dir>/truth-<segment>.csv``
    (``index,kind,event_id,event_ts``). A stream that did not stop cleanly has records past its
    last checkpoint that only its next start recovers: refused, unless ``running`` (then the
    truth ends at the last checkpoint)."""
    segments = SegmentLog(state_dir).segments()
    if not segments:
        raise ValueError(f"no stream log in {state_dir}")
    if not segments[-1].settled and not running:
        raise ValueError(
            f"the stream in {state_dir} did not stop cleanly: what it sent after its last checkpoint is "
            "known once it starts again (which recovers it), or stop it with SIGTERM"
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summaries: list[dict[str, Any]] = []
    for s in segments:
        first = s.first if s.first is not None else s.next
        path = out / f"truth-{s.segment}.csv"
        summary = _core.write_truth(s.sim, first, s.next, s.not_sent, str(path))
        summaries.append({"segment": s.segment, "topic": s.topic, "first": first, "next": s.next,
                          "not_sent": len(s.not_sent), "path": str(path), **summary})
    return summaries
