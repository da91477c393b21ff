"""The source from the command line: ``simulate``, ``produce``, ``stream`` (always on) and
``stream-truth`` (what a stream sent, regenerated from its segment log)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from datetime import UTC, datetime
from typing import Any

from spotify_pipeline import _core
from spotify_pipeline import stream as stream_mod
from spotify_pipeline.cli import connect, report
from spotify_pipeline.simulation import sim_config


def _sim_args(p: argparse.ArgumentParser) -> None:
    # Defaults are the core's (_core.default_sim_config()), shown in --help, applied by sim_config.
    d = _core.default_sim_config()
    g = p.add_argument_group("simulation")
    g.add_argument("--seed", type=int, help=f"default {d['seed']}")
    g.add_argument("--start", help="simulated start, ISO 8601 (default: so that the events end about now)")
    g.add_argument("--users", type=int, help=f"default {d['users']}")
    g.add_argument("--songs", type=int, help=f"default {d['songs']}")
    g.add_argument("--catalog-seed", type=int, help=f"default {d['catalog_seed']}")
    g.add_argument("--zipf-s", type=float, help=f"popularity exponent, default {d['zipf_s']}")
    g.add_argument("--late-rate", type=float, default=0.0)
    g.add_argument("--max-late-ms", type=int, help=f"latest a late record arrives, default {d['faults']['max_late_ms']}")
    g.add_argument("--duplicate-rate", type=float, default=0.0)
    g.add_argument("--malformed-rate", type=float, default=0.0)


def _sim(args: argparse.Namespace, events: int | None) -> _core.SimConfig:
    faults = {"late_rate": args.late_rate, "max_late_ms": args.max_late_ms, "duplicate_rate": args.duplicate_rate, "malformed_rate": args.malformed_rate}
    return sim_config(
        seed=args.seed, start=args.start, events=events, users=args.users, songs=args.songs,
        catalog_seed=args.catalog_seed, zipf_s=args.zipf_s, faults=faults,
    )


def _default_state_dir() -> str:
    base = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return os.path.join(base, "spotify-pipeline", "stream")


def _stream(args: argparse.Namespace) -> int:
    def stop(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, stop)
    sim = _sim(args, None)
    if args.rate:
        sim["sessions_per_user_per_day"] = stream_mod.rate_to_sessions(sim, args.rate, args.speedup)
    start_ms = sim.pop("start_ms") if args.start else None
    kafka = connect.kafka_config(args)
    options: _core.StreamOptions = {"duration_s": args.duration_s, "checkpoint_s": args.checkpoint_s,
               "partitions": args.partitions, "replication": 1, "compression": args.compression}
    # A service's log: a line every 10 s, never a bar.
    progress = report.progress_reporter(bar=False)

    sys.stderr.write(f"stream: to {args.topic} on {args.bootstrap}, log in {args.state_dir}\n")
    try:
        c = stream_mod.run(kafka, sim, args.state_dir, speedup=args.speedup, start_ms=start_ms,
                           options=options, progress=progress)
    except KeyboardInterrupt as e:
        last = stream_mod.SegmentLog(args.state_dir).segments()[-1]
        state = "cleanly" if last.settled else "before its in-flight records were acknowledged (the next start recovers them)"
        sys.stderr.write(f"stream: stopped ({e or 'interrupt'}) {state}; segment {last.segment}, next record {last.next}\n")
        return 0
    clock = datetime.fromtimestamp(c["sim_now_ms"] / 1000, UTC).isoformat(timespec="seconds")
    sys.stderr.write(f"stream: done, {c['sent']:,} records sent, next record {c['next']}, simulated clock {clock}\n")
    return 0


def add_parser(sub: Any, name: str, help: str) -> None:
    p = sub.add_parser(name, help=help)
    if name == "simulate":
        p.add_argument("--count", type=int, default=10)
        _sim_args(p)
        p.set_defaults(run=_simulate)
    elif name == "produce":
        connect.add_kafka_args(p)
        p.add_argument("--events", type=int, help="how many records (default 100000 unless --duration-s)")
        p.add_argument("--duration-s", type=float, help="stop after this many seconds")
        pace = p.add_mutually_exclusive_group()
        pace.add_argument("--rate", type=float, help="events per second (default: as fast as possible)")
        pace.add_argument("--speedup", type=float, help="simulated seconds per second; 1 = real time")
        p.add_argument("--partitions", type=int, default=3)
        p.add_argument("--compression", default="lz4", choices=["none", "gzip", "snappy", "lz4", "zstd"])
        _sim_args(p)
        p.set_defaults(run=_produce)
    elif name == "stream":
        connect.add_kafka_args(p)
        p.add_argument("--state-dir", default=_default_state_dir(), help="its segment log (default %(default)s)")
        p.add_argument("--rate", type=float, help="events per second, averaged over a day (sets sessions per user per day)")
        p.add_argument("--speedup", type=float, default=1.0, help="simulated seconds per second (default 1: real time)")
        p.add_argument("--duration-s", type=float, help="stop after this long (default: never)")
        p.add_argument("--checkpoint-s", type=float, default=5.0, help="how often it logs what is acknowledged")
        p.add_argument("--partitions", type=int, default=3)
        p.add_argument("--compression", default="lz4", choices=["none", "gzip", "snappy", "lz4", "zstd"])
        _sim_args(p)
        p.set_defaults(run=_stream)
    elif name == "stream-truth":
        p.add_argument("--state-dir", default=_default_state_dir())
        p.add_argument("--out", required=True, help="directory for truth-<segment>.csv")
        p.add_argument("--running", action="store_true", help="the stream is still running: truth up to its last checkpoint")
        p.set_defaults(run=_stream_truth)


def _stream_truth(args: argparse.Namespace) -> int:
    for summary in stream_mod.truth(args.state_dir, args.out, running=args.running):
        print(json.dumps(summary))
    return 0


def _simulate(args: argparse.Namespace) -> int:
    out = sys.stdout.buffer
    for _, record in _core.simulate(_sim(args, args.count), args.count):
        out.write(record + b"\n")
    return 0


def _produce(args: argparse.Namespace) -> int:
    events = args.events if args.events is not None or args.duration_s else 100_000
    options: _core.ProduceOptions = {
        "count": events, "duration_s": args.duration_s, "rate_per_s": args.rate, "speedup": args.speedup,
        "partitions": args.partitions, "replication": 1, "compression": args.compression,
    }
    t = time.perf_counter()
    summary = _core.produce(connect.kafka_config(args), _sim(args, events), options, report.progress_reporter(bar=True))
    sys.stderr.write("\n")
    print(json.dumps(summary, indent=2))
    sys.stderr.write(f"produced {summary['events']:,} records in {time.perf_counter() - t:.2f}s\n")
    return 0
