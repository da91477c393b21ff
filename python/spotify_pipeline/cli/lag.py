"""``spotify-pipeline lag``: how far the lake's bronze table is behind the topic, per partition
(against the Delta txns the drain committed, as ``KafkaLagSensor`` measures it). With
``--min-lag`` or ``--max-age-s`` it is a check for a script: exit 0 when a drain is due, 4 when
not, e.g. ``spotify-pipeline lag --min-lag 10000 --max-age-s 10 && spotify-pipeline drain``."""

from __future__ import annotations

import argparse
import time
from typing import Any

from spotify_pipeline import _core
from spotify_pipeline.cli import connect, report
from spotify_pipeline.triggers.kafka_lag import lag_reached

# The exit code of a check whose threshold is not reached: nothing to do, not a failure.
NOT_DUE = 4


def add_parser(sub: Any, name: str, help: str) -> None:
    p = sub.add_parser(name, help=help,
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    connect.add_kafka_args(p)
    connect.add_lake_args(p)
    p.add_argument("--min-lag", type=int, help="due when at least this many records wait")
    p.add_argument("--max-age-s", type=float, help="due when the oldest waiting record is this old")
    report.add_output_args(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    lag = _core.lag(connect.kafka_config(args), connect.lake_config(args), args.dataset)
    oldest = lag["oldest_undrained_ms"]
    age = f", the oldest waiting {time.time() - oldest / 1000:,.1f} s" if oldest is not None else ""
    parts = ", ".join(f"{p['partition']}: {p['lag']:,}" for p in lag["partitions"])
    checked = args.min_lag is not None or args.max_age_s is not None
    due = checked and lag_reached(lag, args.min_lag if args.min_lag is not None else lag["lag"] + 1, args.max_age_s)
    summary = {**lag, "due": due} if checked else dict(lag)
    verdict = (": a drain is due" if due else ": no drain due") if checked else ""
    report.print_summary(summary, args.json,
                         f"{args.lake_url} is {lag['lag']:,} records behind {args.topic}{age} (by partition {parts}){verdict}")
    return NOT_DUE if checked and not due else 0
