"""``spotify-pipeline maintain compact | vacuum``: OPTIMIZE and VACUUM of the bronze tables, as
``LakeCompactOperator`` and ``LakeVacuumOperator`` do (safe beside running drains and stages;
see the README's lake maintenance)."""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING, Any

from spotify_pipeline.cli import connect, report
from spotify_pipeline.operators.maintain import (
    DEFAULT_CLOSED_AFTER_S,
    DEFAULT_RETENTION_HOURS,
    DEFAULT_TARGET_FILE_BYTES,
    compact_lake,
    vacuum_lake,
)

if TYPE_CHECKING:
    from spotify_pipeline._core import CompactOptions, VacuumOptions

log = logging.getLogger("spotify_pipeline.cli.maintain")


def add_parser(sub: Any, name: str, help: str) -> None:
    p = sub.add_parser(name, help=help,
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    which = p.add_subparsers(dest="maintenance", required=True)
    c = which.add_parser("compact", help="pack the small files of each closed hour")
    connect.add_lake_args(c)
    c.add_argument("--target-file-bytes", type=int, default=DEFAULT_TARGET_FILE_BYTES, help="default %(default)s")
    c.add_argument("--closed-after-s", type=int, default=DEFAULT_CLOSED_AFTER_S,
                   help="an hour is compacted once it ended this long ago (default %(default)s)")
    report.add_output_args(c)
    c.set_defaults(run=compact)
    v = which.add_parser("vacuum", help="delete files no version within the retention needs")
    connect.add_lake_args(v)
    v.add_argument("--retention-hours", type=int, default=DEFAULT_RETENTION_HOURS, help="at least 1 (default %(default)s)")
    v.add_argument("--dry-run", action="store_true", help="list what would be deleted, delete nothing")
    report.add_output_args(v)
    v.set_defaults(run=vacuum)


def compact(args: argparse.Namespace) -> int:
    options: CompactOptions = {"dataset": args.dataset, "target_file_bytes": args.target_file_bytes, "closed_after_s": args.closed_after_s}
    summary = compact_lake(connect.lake_config(args), options, log, report.progress_reporter(args.quiet))
    report.print_summary(summary, args.json, (
        f"compacted {sum(t['partitions_compacted'] for t in summary['tables'])} hour partitions: "
        f"{summary['files_removed']} files -> {summary['files_added']} in {summary['elapsed_s']:.1f} s"
    ))
    return 0


def vacuum(args: argparse.Namespace) -> int:
    options: VacuumOptions = {"dataset": args.dataset, "retention_hours": args.retention_hours, "dry_run": args.dry_run}
    summary = vacuum_lake(connect.lake_config(args), options, log)
    report.print_summary(summary, args.json,
                         f"{'would delete' if args.dry_run else 'deleted'} {summary['files_deleted']} files")
    return 0
