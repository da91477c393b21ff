"""``spotify-pipeline stage``: the lake's new bronze Delta versions into the warehouse, exactly
once, as ``StageToWarehouseOperator`` does (the same ledger: a re-run, or a run beside the DAGs,
loads nothing twice). DuckDB allows one writer: a stage waits for the file up to 120 s."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from spotify_pipeline.cli import connect, report
from spotify_pipeline.stage import DEFAULT_CHUNK_ROWS, DEFAULT_CHUNK_VERSIONS, LakeStager

log = logging.getLogger("spotify_pipeline.cli.stage")


def add_parser(sub: Any, name: str, help: str) -> None:
    p = sub.add_parser(name, help=help,
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    connect.add_lake_args(p)
    connect.add_warehouse_args(p)
    p.add_argument("--no-reference", dest="load_reference", action="store_false",
                   help="leave the reference tables (songs, artists, users, subscriptions) as they are")
    p.add_argument("--chunk-rows", type=int, default=DEFAULT_CHUNK_ROWS, help="rows a load transaction (default %(default)s)")
    p.add_argument("--chunk-versions", type=int, default=DEFAULT_CHUNK_VERSIONS, help="versions a load transaction (default %(default)s)")
    report.add_output_args(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    lake = connect.lake_config(args)
    warehouse = connect.warehouse(args)
    stager = LakeStager(lake=lake, dataset=args.dataset, load_reference=args.load_reference, chunk_rows=args.chunk_rows,
                        chunk_versions=args.chunk_versions, log=log, progress=report.progress_reporter(args.quiet))
    with warehouse.connect() as con:
        summary = stager.run(warehouse, con)
    report.print_summary(summary, args.json, (
        f"loaded {summary['rows']:,} rows and {summary['quarantined']:,} quarantined records from {summary['files']} files "
        f"of versions {summary['versions'] or 'none new'} into {summary['table']}"
    ))
    return 0
