"""dbt build: a stream's incremental build on a warehouse that already holds a long history, with
and without the whole-history data tests (tag ``whole_history``, run hourly by
``spotify_gold_audit`` instead).

    .venv/bin/python bench/dbt_build.py --warehouse /path/to/spotify.duckdb --repeats 3

The warehouse is copied first (the builds write to it). Each repeat runs, interleaved, the build
with every data test (the reference: what every transform run did before) and the build a
stream's transform runs now (``--exclude test_type:unit tag:whole_history``), both through
``DbtBuildOperator`` as the DAG does, with nothing new to load: the fixed cost that each build
pays, and that grows with the tables. Reports medians and the ratio, and where the time goes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILDS = {
    "every data test (reference)": "test_type:unit",
    "a stream's build (whole-history tests left to the audit)": "test_type:unit tag:whole_history",
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--warehouse", required=True, help="a DuckDB warehouse with history (e.g. a freshness run's)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "False")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    work = Path(tempfile.mkdtemp(prefix="spotify-bench-dbt-"))
    db = work / "wh.duckdb"
    shutil.copy(args.warehouse, db)
    os.environ["AIRFLOW_CONN_DUCKDB_BENCH"] = json.dumps({"conn_type": "duckdb", "extra": {"path": str(db)}})

    from spotify_pipeline.operators.dbt import DbtBuildOperator

    def build(exclude: str) -> dict:
        # One target path: partial parsing stays warm, as the operator's cache keeps it between runs.
        return DbtBuildOperator(task_id="dbt", project_dir=str(ROOT / "dbt"), duckdb_conn_id="duckdb_bench",
                                exclude=exclude, target_path=str(work / "target")).execute(context={})

    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        events = con.execute("select count(*) from gold.fct_user_activity").fetchone()[0]
    build("test_type:unit")  # warm-up: parse, first open of the file
    wall: dict[str, list[float]] = {name: [] for name in BUILDS}
    last: dict[str, dict] = {}
    for i in range(args.repeats):
        for name, exclude in BUILDS.items():
            t = time.monotonic()
            last[name] = build(exclude)
            wall[name].append(time.monotonic() - t)
            print(f"[dbt-build] repeat {i + 1}/{args.repeats}: {name} {wall[name][-1]:.1f} s", flush=True)
    ref, new = (statistics.median(wall[n]) for n in BUILDS)
    print(f"\ndbt build with nothing new to load, on {events:,} events in gold (medians of {args.repeats} interleaved repeats):")
    print("| build | wall (s) | data tests run | tests (s) | models (s) |\n|---|---|---|---|---|")
    for name in BUILDS:
        nodes = last[name]["nodes"]
        tests = [n for n in nodes if n["resource_type"] == "test"]
        print(f"| {name} | {statistics.median(wall[name]):.1f} | {len(tests)} | "
              f"{sum(n['execution_time_s'] for n in tests):.1f} | "
              f"{sum(n['execution_time_s'] for n in nodes if n['resource_type'] != 'test'):.1f} |")
    print(f"ratio: {new / ref:.2f} x the reference")
    heavy = sorted(last[next(iter(BUILDS))]["nodes"], key=lambda n: -n["execution_time_s"])[:8]
    print("\nslowest nodes of the reference build:\n| node | s |\n|---|---|")
    for n in heavy:
        print(f"| {n['unique_id']} | {n['execution_time_s']:.2f} |")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
