"""Prints what the last runs of the pipeline's DAGs did, layer by layer: ``spotify_pipeline``
(produce, drain, stage) and ``spotify_transform`` (dbt).

Reads the runs' XCom summaries from Airflow's metadata database and counts the warehouse
directly. Run with the Airflow environment of scripts/airflow-env.sh.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any


def _decoded(value: Any) -> Any:
    """XCom values come back as JSON text or as values; a plain string stays a string."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def run_summaries(dag_id: str, run_id: str | None = None) -> tuple[str, str, dict[str, Any]]:
    """(run_id, state, {task_id: return value}) of ``run_id`` or of the newest run."""
    from airflow.models.dagrun import DagRun
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        q = session.query(DagRun).filter(DagRun.dag_id == dag_id)
        run = q.filter(DagRun.run_id == run_id).one() if run_id else q.order_by(DagRun.id.desc()).first()
        if run is None:
            raise SystemExit(f"no run of {dag_id} found")
        rows = (
            session.query(XComModel)
            .filter(XComModel.dag_id == dag_id, XComModel.run_id == run.run_id, XComModel.key == "return_value")
            .all()
        )
        from spotify_pipeline.operators.drain import merge_drain_summaries

        mapped: dict[str, list[Any]] = {}
        for r in sorted(rows, key=lambda r: (r.task_id, r.map_index)):
            v = XComModel.deserialize_value(r)
            mapped.setdefault(r.task_id, []).append(_decoded(v))
        values = {task: vs[0] if len(vs) == 1 else vs for task, vs in mapped.items()}
        if isinstance(values.get("drain"), list):  # the drain mapped over partition sets
            values["drain"] = merge_drain_summaries(values["drain"])
        return run.run_id, str(run.state), values


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dag-id", action="append", help="DAGs to report (default: spotify_pipeline and spotify_transform)")
    ap.add_argument("--run-id", help="with one --dag-id: that run instead of the newest")
    ap.add_argument("--duckdb", default=os.environ.get("SPOTIFY_DUCKDB_PATH"))
    ap.add_argument("--json", action="store_true", help="print the run's state and XCom summaries as JSON")
    args = ap.parse_args()

    dag_ids = args.dag_id or ["spotify_pipeline", "spotify_transform"]
    runs, xcom = {}, {}
    for dag_id in dag_ids:
        run_id, state, values = run_summaries(dag_id, args.run_id if len(dag_ids) == 1 else None)
        runs[dag_id] = {"run_id": run_id, "state": state}
        xcom.update(values)
    state = "success" if all(r["state"] == "success" for r in runs.values()) else "failed"
    if args.json:
        print(json.dumps({"state": state, "runs": runs, "xcom": xcom}))
        return 0
    produce, drain, stage, dbt = (xcom.get(t, {}) for t in ("produce", "drain", "stage", "dbt_build"))
    for dag_id, run in runs.items():
        print(f"\n=== {dag_id} run {run['run_id']}: {run['state']} ===")
    print(f"events produced : {produce.get('events', 0):>12,}  ({produce.get('events_per_s', 0):,.0f} events/s, seed {produce.get('sim_config', {}).get('seed')})")
    print(f"bronze (lake)   : {drain.get('rows', 0):>12,} rows in {drain.get('files_total', 0)} files, {len(drain.get('batches', []))} batches, "
          f"{drain.get('commits', 0)} Delta commits; quarantined {drain.get('quarantined', 0)}")
    versions = ", ".join(f"{t} {a}-{b}" for t, (a, b) in stage.get("versions", {}).items()) or "none new"
    print(f"warehouse bronze: {stage.get('rows', 0):>12,} rows loaded from {stage.get('files', 0)} files (Delta versions: {versions})")
    if dbt:
        print(f"dbt build       : {dbt.get('counts')}")
    if args.duckdb and os.path.exists(args.duckdb):
        import duckdb

        with duckdb.connect(args.duckdb, read_only=True) as con:
            total = con.execute("select count(*) from bronze.spotify_events").fetchone()[0]
            silver = con.execute("select count(*) from silver.stg_spotify__events").fetchone()[0]
            print(f"warehouse total : {total:>12,} bronze rows, {silver:,} silver events (all runs)")
            rejected = con.execute("select count(*) from silver.int_events_rejected").fetchone()[0]
            print(f"silver rejected :  {rejected:>11,} (quarantined by the drain or failing silver rules; gold.kpi_rejected_events)")
            dau = con.execute(
                "select date, daily_active_users, plays, round(avg_session_duration_s / 60, 1) "
                "from gold.kpi_daily_engagement order by date desc limit 1"
            ).fetchone()
            if dau:
                print(f"latest day      : {dau[0]}: {dau[1]:,} active users, {dau[2]:,} plays, sessions {dau[3]} min on average")
            print("\ntop songs (gold.kpi_top_songs):")
            rows = con.execute("select song_name, artist_name, plays, round(skip_rate, 3) from gold.kpi_top_songs order by play_rank limit 5").fetchall()
            print(f"  {'song':<24} {'artist':<26} {'plays':>8} {'skip rate':>9}")
            for song, artist, plays, skip in rows:
                print(f"  {song:<24} {artist:<26} {plays:>8,} {skip if skip is not None else '':>9}")
            print("\nthe dashboard: Airflow → Spotify dashboard (/spotify-dashboard/), or dashboards/spotify/latest.html in the lake")
    return 0 if state == "success" else 1


if __name__ == "__main__":
    sys.exit(main())
