"""Staging benchmark: rows/s from MinIO bronze into DuckDB, against DuckDB's own
`INSERT INTO ... SELECT * FROM read_parquet(...)` of the same files (its ceiling).

    .venv/bin/python bench/stage.py [--events 1000000]

Ours is the whole StageToWarehouseOperator path, timed end to end: read the Delta log's versions
after the ledger, fetch their files from MinIO (Rust), verify them against their commits, and
load them with their ledger rows in one transaction. DuckDB's reference reads local copies of the same files: it has no S3 client here
(its httpfs extension is a download this machine cannot make), so its time leaves out the
transfer that ours includes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import fresh_topic, stack_env  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--chunk-rows", type=int, default=None, help="the operator's chunk_rows (default: its own)")
    ap.add_argument("--repeat", type=int, default=3, help="interleaved runs of each path; medians are reported")
    args = ap.parse_args()
    env = stack_env()
    n = args.events
    bucket, prefix = env["SPOTIFY_LAKE_BUCKET"], f"bench/{uuid.uuid4().hex[:8]}"
    os.environ["AIRFLOW_CONN_BENCH_LAKE"] = json.dumps({
        "conn_type": "aws", "login": env["SPOTIFY_S3_ACCESS_KEY"], "password": env["SPOTIFY_S3_SECRET_KEY"],
        "extra": {"endpoint_url": env["SPOTIFY_S3_ENDPOINT"]},
    })
    import duckdb

    from spotify_pipeline import _core
    from spotify_pipeline.hooks.lake import LakeHook
    from spotify_pipeline.operators.stage import StageToWarehouseOperator

    topic = fresh_topic("stage")
    lake_url = f"s3://{bucket}/{prefix}"
    lake = LakeHook(lake_url, "bench_lake").lake_config()
    kafka = {"client": {"bootstrap.servers": env["SPOTIFY_KAFKA_BOOTSTRAP"]}, "topic": topic, "timeout_s": 60}
    _core.produce(kafka, {"seed": 1, "start_ms": 1_772_323_200_000, "users": 20_000, "songs": 20_000}, {"count": n, "partitions": 4})
    drained = _core.drain(kafka, lake, {"group_id": "bench"})
    print(f"{n:,} events in {len(drained['batches'])} batches, {len(drained['files'])} files, {drained['commits']} commits", flush=True)

    ours_times, ref_times, job_times, unordered_times = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        pending = _core.pending_versions(lake, "spotify_events", -1, -1)
        data_files = [f for c in pending["events"] for f in c["files"]]
        files = [p["local_path"] for p in _core.prepare_files(lake, "events", data_files, f"{tmp}/copy")]
        # Interleaved repeats, medians: this 2-core box is noisy.
        for i in range(args.repeat):
            # Ours, end to end, into a fresh database.
            os.environ["AIRFLOW_CONN_BENCH_DUCKDB"] = json.dumps({"conn_type": "duckdb", "extra": {"path": f"{tmp}/ours{i}.duckdb"}})
            op = StageToWarehouseOperator(task_id="stage", lake_url=lake_url, lake_conn_id="bench_lake",
                                          warehouse_conn_id="bench_duckdb", load_reference=False,
                                          **({"chunk_rows": args.chunk_rows} if args.chunk_rows else {}))
            t = time.perf_counter()
            summary = op.execute(context={})
            ours_times.append(time.perf_counter() - t)
            assert summary["rows"] == n, summary

            # DuckDB's own read_parquet of the same files, from local copies: the statement
            # alone, and as a job (open the database, insert, close: what ours does too).
            with duckdb.connect(f"{tmp}/ref{i}.duckdb") as con:
                con.execute("create table t as select * from read_parquet(?) limit 0", [files])
            t = time.perf_counter()
            con = duckdb.connect(f"{tmp}/ref{i}.duckdb")
            s = time.perf_counter()
            con.execute("insert into t select * from read_parquet(?)", [files])
            ref_times.append(time.perf_counter() - s)
            con.close()
            job_times.append(time.perf_counter() - t)
            with duckdb.connect(f"{tmp}/ref{i}.duckdb", read_only=True) as con:
                assert con.execute("select count(*) from t").fetchone()[0] == n
            # The same with the setting our load uses (insertion order not kept).
            with duckdb.connect(f"{tmp}/unordered{i}.duckdb") as con:
                con.execute("create table t as select * from read_parquet(?) limit 0", [files])
            t = time.perf_counter()
            con = duckdb.connect(f"{tmp}/unordered{i}.duckdb")
            con.execute("set preserve_insertion_order = false")
            con.execute("insert into t select * from read_parquet(?)", [files])
            con.close()
            unordered_times.append(time.perf_counter() - t)
            print(f"  run {i + 1}: ours {ours_times[-1]:.2f} s, read_parquet {ref_times[-1]:.2f} s (as a job {job_times[-1]:.2f} s)", flush=True)
    ours, ref, job = statistics.median(ours_times), statistics.median(ref_times), statistics.median(job_times)
    unordered = statistics.median(unordered_times)

    print(f"\nstaging {n:,} rows from MinIO bronze into DuckDB (median of {args.repeat}):\n")
    print("| path | seconds | rows/s | × read_parquet job | × read_parquet statement |")
    print("|---|---:|---:|---:|---:|")
    print(f"| DuckDB INSERT ... SELECT * FROM read_parquet, the statement (local copies) | {ref:.2f} | {n / ref:,.0f} | {ref / job:.2f} | 1.00 |")
    print(f"| the same as a job: open the database, insert, close | {job:.2f} | {n / job:,.0f} | 1.00 | {job / ref:.2f} |")
    print(f"| the job with preserve_insertion_order = false (as our load) | {unordered:.2f} | {n / unordered:,.0f} | {unordered / job:.2f} | {unordered / ref:.2f} |")
    print(f"| StageToWarehouseOperator (MinIO → ledgered DuckDB load) | {ours:.2f} | {n / ours:,.0f} | {ours / job:.2f} | {ours / ref:.2f} |")


if __name__ == "__main__":
    main()
