"""``spotify-pipeline drain``: a topic into the lake's bronze Delta tables, exactly once, as
``KafkaDrainOperator`` does (the same options, the same core call). Safe to run beside the DAGs
or another drain: commits go through the Delta txns, so a range is committed once."""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING, Any, cast

from spotify_pipeline.cli import connect, report
from spotify_pipeline.operators.drain import DEFAULT_GROUP_ID, DEFAULT_IDLE_TIMEOUT_S, drain_topic, share_partitions

if TYPE_CHECKING:
    from spotify_pipeline._core import DrainOptions

log = logging.getLogger("spotify_pipeline.cli.drain")


def _partitions(text: str) -> list[int]:
    try:
        return [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"partitions are comma-separated numbers, not {text!r}") from None


def _share(text: str) -> list[int]:
    index, sep, count = text.partition("/")
    if sep:
        try:
            return [int(index), int(count)]
        except ValueError:
            pass
    raise argparse.ArgumentTypeError(f"a share is INDEX/COUNT, such as 0/2, not {text!r}")


def add_parser(sub: Any, name: str, help: str) -> None:
    p = sub.add_parser(name, help=help,
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    connect.add_kafka_args(p)
    connect.add_lake_args(p)
    which = p.add_mutually_exclusive_group()
    which.add_argument("--partitions", type=_partitions, help="only these partitions, e.g. 0,3 (default: all)")
    which.add_argument("--partition-share", type=_share, metavar="INDEX/COUNT",
                       help="the INDEX-th of COUNT round-robin sets of the topic's partitions, e.g. 0/2")
    p.add_argument("--max-records", type=int, help="stop after about this many records")
    p.add_argument("--max-seconds", type=float, help="stop after this long")
    p.add_argument("--group-id", default=DEFAULT_GROUP_ID, help="default %(default)s")
    p.add_argument("--idle-timeout-s", type=int, default=DEFAULT_IDLE_TIMEOUT_S, help="default %(default)s")
    p.add_argument("--raw", action="store_true", help="keep each record's bytes in the raw column")
    p.add_argument("--allow-data-loss", action="store_true", help="skip (and count) records retention deleted before they were drained")
    p.add_argument("--reset-offsets", action="store_true", help="the topic was deleted and created again: start it from 0")
    tuning = p.add_argument_group("tuning (default: the core's, see the README)")
    for name in ("batch-max-records", "batch-max-bytes", "buffer-max-bytes", "workers", "commit-interval-ms"):
        tuning.add_argument(f"--{name}", type=int)
    report.add_output_args(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    kafka, lake = connect.kafka_config(args), connect.lake_config(args)
    partitions = args.partitions or []
    if args.partition_share:
        partitions = share_partitions(kafka, args.partition_share)
        if not partitions:
            report.print_summary({"skipped": f"share {args.partition_share} of {args.topic}'s partitions is empty"},
                                 args.json, f"share {args.partition_share} of {args.topic}'s partitions is empty: nothing to drain")
            return 0
    tuning = {k: getattr(args, k) for k in ("batch_max_records", "batch_max_bytes", "buffer_max_bytes", "workers", "commit_interval_ms")}
    options: DrainOptions = {
        "group_id": args.group_id, "partitions": partitions, "dataset": args.dataset, "raw": args.raw,
        # The tuning keys are the core's option names, picked by name: not checkable as TypedDict keys.
        **cast("DrainOptions", {k: v for k, v in tuning.items() if v is not None}),
        "max_records": args.max_records, "max_seconds": args.max_seconds, "idle_timeout_s": args.idle_timeout_s,
        "allow_data_loss": args.allow_data_loss, "reset_offsets": args.reset_offsets,
    }
    summary = drain_topic(kafka, lake, options, log, report.progress_reporter(args.quiet))
    lag = sum(p["lag"] for p in summary["partitions"])
    reasons = f" {summary['quarantined_by_reason']}" if summary["quarantined"] else ""
    report.print_summary(summary, args.json, (
        f"drained {summary['rows']:,} rows of {args.topic} into {summary['table']} in {summary['commits']} commits, "
        f"quarantined {summary['quarantined']:,}{reasons}; {lag:,} records left"
    ))
    return 0
