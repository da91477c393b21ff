"""``spotify-pipeline``: the Rust core from the command line, outside Airflow.

    spotify-pipeline simulate --count 5 --seed 42          # print events as JSON lines
    spotify-pipeline produce --bootstrap 127.0.0.1:9092 --events 100000
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timezone

from spotify_pipeline import SpotifyPipelineError, _core
from spotify_pipeline.operators.produce import simulated_start_ms
from spotify_pipeline.progress import format_progress


def _sim_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--start", help="simulated start, ISO 8601 (default: span before now)")
    p.add_argument("--span-minutes", type=int, default=180)
    p.add_argument("--users", type=int, default=500)
    p.add_argument("--songs", type=int, default=2000)


def _sim(args: argparse.Namespace) -> dict:
    return {
        "seed": args.seed,
        "start_ms": simulated_start_ms(args.start, args.span_minutes, datetime.now(timezone.utc)),
        "span_ms": args.span_minutes * 60_000,
        "users": args.users,
        "songs": args.songs,
        "zipf_s": 1.1,
    }


def _progress_bar(p: dict) -> None:
    sys.stderr.write("\r" + format_progress(p).ljust(100))
    sys.stderr.flush()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="spotify-pipeline", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    s = sub.add_parser("simulate", help="print simulated events as JSON lines")
    s.add_argument("--count", type=int, default=10)
    _sim_args(s)
    pr = sub.add_parser("produce", help="simulate events and produce them to Kafka")
    pr.add_argument("--bootstrap", default="127.0.0.1:9092")
    pr.add_argument("--topic", default="spotify_events")
    pr.add_argument("--events", type=int, default=100_000)
    pr.add_argument("--partitions", type=int, default=3)
    pr.add_argument("--compression", default="lz4", choices=["none", "gzip", "snappy", "lz4", "zstd"])
    pr.add_argument("--timeout-s", type=int, default=30)
    _sim_args(pr)
    args = ap.parse_args(argv)

    try:
        if args.command == "simulate":
            for line in _core.simulate(_sim(args), args.count):
                print(line)
            return 0
        kafka = {"client": {"bootstrap.servers": args.bootstrap}, "topic": args.topic, "timeout_s": args.timeout_s}
        options = {"count": args.events, "partitions": args.partitions, "replication": 1, "compression": args.compression}
        t = time.perf_counter()
        summary = _core.produce(kafka, _sim(args), options, _progress_bar)
        sys.stderr.write("\n")
        print(json.dumps(summary, indent=2))
        sys.stderr.write(f"produced {summary['events']:,} events in {time.perf_counter() - t:.2f}s\n")
        return 0
    except SpotifyPipelineError as e:
        sys.stderr.write(f"\nerror: {e}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("\ninterrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
