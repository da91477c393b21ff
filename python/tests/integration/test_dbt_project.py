"""The dbt project on a warehouse the real stager loaded from the real lake (Kafka + MinIO):
full build, every gold table recomputed independently from the bronze Parquet files, a second
load with cross-load duplicates, late events and rule-breaking records, the incremental build
equal to a full refresh, the seed's sample query as written, and dbt docs generate."""

from __future__ import annotations

import json
import math
import shutil
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pytest

from reconcile import committed_bronze
from reconcile import quarantined as quarantined_records
from spotify_pipeline import _core

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from gold_kpis import GoldMismatch, check_gold_kpis, recompute  # noqa: E402

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
DBT_DIR = ROOT / "dbt"
SAMPLE_QUERY = (DBT_DIR / "analyses" / "top_songs_last_7_days.sql").read_text()
GOLD_TABLES = (
    "fct_user_activity fct_listening_sessions fct_song_plays_daily dim_songs dim_artists dim_users "
    "dim_user_subscriptions kpi_daily_engagement kpi_song_skip_rates kpi_artist_popularity kpi_top_songs "
    "kpi_genre_distribution kpi_new_release_trending kpi_country_activity kpi_listening_hours_local "
    "kpi_device_by_region kpi_rejected_events kpi_pipeline_reconciliation kpi_pipeline_freshness"
).split()
# Incremental tables outside gold, compared like gold: incremental runs must equal a full refresh.
SILVER_INCREMENTAL = ["silver.int_event_deliveries__ranked_validated", "silver.int_sessions"]
# when each build ran, not what it computed
VOLATILE = {"dim_users": ["version_valid_from"], "fct_user_activity": ["transformed_at"],
            "kpi_pipeline_freshness": ["measured_at", "lag_s"],
            "silver.int_event_deliveries__ranked_validated": ["ranked_at"], "silver.int_sessions": ["built_at"]}


def _rfc3339(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _rule_breakers(sim: dict, bootstrap: str, topic: str) -> dict[str, int]:
    """Records that meet the event contract (the drain lets them through) but break a silver rule."""
    from confluent_kafka import Producer

    key, payload = _core.simulate({k: v for k, v in sim.items() if k != "faults"}, 1)[0]
    base = json.loads(payload)
    cases = {
        "future_event_ts": {"event_ts": _rfc3339(datetime.now(timezone.utc) + timedelta(days=2))},
        "duration_out_of_range": {"duration_ms": 0, "position_ms": 0},
        "position_out_of_range": {"position_ms": base["duration_ms"] + 1},
        "unknown_subscription": {"subscription": "family"},
    }
    producer = Producer({"bootstrap.servers": bootstrap})
    for change in cases.values():
        record = {**base, **change, "event_id": str(uuid.uuid4())}
        producer.produce(topic, key=key, value=json.dumps(record).encode())
    assert producer.flush(30) == 0
    return {reason: 1 for reason in cases}


def _sorted(rows) -> list[tuple]:
    return sorted((tuple(r) for r in rows), key=lambda r: tuple((v is None, v if v is not None else 0) for v in r))


def _gold_rows(db: Path, table: str) -> list[tuple]:
    """The rows of gold.<table> (or of a schema-qualified table), without its volatile columns."""
    name = table if "." in table else f"gold.{table}"
    with duckdb.connect(str(db), read_only=True) as con:
        cols = [c for c in con.execute(f"select * from {name} limit 0").df().columns if c not in VOLATILE.get(table, [])]
        return _sorted(con.execute(f"select {', '.join(cols)} from {name}").fetchall())


def _same_rows(a: list[tuple], b: list[tuple]) -> bool:
    """Equal rows; doubles equal to 1e-9 relative (a parallel avg() sums in any order)."""
    if len(a) != len(b):
        return False
    for ra, rb in zip(a, b):
        for x, y in zip(ra, rb):
            if isinstance(x, float) and isinstance(y, float):
                if not math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12):
                    return False
            elif x != y:
                return False
    return True


SNOWFLAKE_ENV = {"SNOWFLAKE_ACCOUNT": "fake", "SNOWFLAKE_USER": "u", "SNOWFLAKE_PASSWORD": "p",
                 "SNOWFLAKE_WAREHOUSE": "wh", "SNOWFLAKE_DATABASE": "ANALYTICS", "SNOWFLAKE_ROLE": "r"}
COPY_TO_SNOWFLAKE = {
    ("bronze", "spotify_events"): "*",
    ("bronze", "_loads"): "batch_id, kafka_partition, start_offset, end_offset, loaded_at",
    ("bronze", "spotify_events_quarantine"): "*",
    ("reference", "songs"): "*",
    ("reference", "artists"): "*",
    ("reference", "users"): "*",
    ("reference", "subscriptions"): "user_id, timezone('UTC', valid_from) as valid_from, subscription, catalog_seed, catalog",
}


def _gold_on_fakesnow(db: Path, work: Path, tables: list[str]) -> dict[str, list[tuple]]:
    """Copies the warehouse's bronze and reference tables into fakesnow (the Snowflake emulator),
    runs `dbt build --target snowflake` there (unit tests excluded: fakesnow cannot create their
    temporary tables), and returns the gold tables' rows."""
    import fakesnow  # a declared dev dependency: failing to import it fails the test
    import snowflake.connector
    from dbt.cli.main import dbtRunner

    (work / "fakesnow").mkdir(exist_ok=True)
    with fakesnow.patch(db_path=str(work / "fakesnow")):
        from snowflake.connector.pandas_tools import write_pandas  # the patched one

        con = snowflake.connector.connect(database="ANALYTICS", schema="PUBLIC")
        for schema in ("BRONZE", "REFERENCE"):
            con.cursor().execute(f"create schema if not exists ANALYTICS.{schema}")
        with duckdb.connect(str(db), read_only=True) as src:
            for (schema, table), cols in COPY_TO_SNOWFLAKE.items():
                df = src.execute(f"select {cols} from {schema}.{table}").df()
                df.columns = [c.upper() for c in df.columns]
                write_pandas(con, df, table.upper(), database="ANALYTICS", schema=schema.upper(),
                             auto_create_table=True, use_logical_type=True)
        res = dbtRunner().invoke(["build", "--target", "snowflake", "--project-dir", str(DBT_DIR),
                                  "--profiles-dir", str(DBT_DIR), "--exclude", "test_type:unit", "--quiet",
                                  "--target-path", str(work / "snow-target"), "--log-path", str(work / "snow-logs")])
        failed = [r.node.unique_id for r in (res.result or []) if str(r.status) in ("error", "fail")]
        assert res.success, (res.exception, failed)
        out = {}
        cur = con.cursor()
        for t in tables:
            cur.execute(f"select * from ANALYTICS.GOLD.{t.upper()} limit 0")
            cols = [d[0] for d in cur.description if d[0].lower() not in VOLATILE.get(t, [])]
            cur.execute(f"select {', '.join(cols)} from ANALYTICS.GOLD.{t.upper()}")
            out[t] = _sorted(cur.fetchall())
        con.close()
    return out


def test_dbt_project_on_the_real_stack(stack, topic, lake_prefix, tmp_path, monkeypatch):
    from spotify_pipeline.operators.dbt import DbtBuildOperator
    from spotify_pipeline.operators.stage import StageToWarehouseOperator

    kafka, lake = stack.kafka(topic), stack.lake(lake_prefix)
    db, db_full = tmp_path / "wh.duckdb", tmp_path / "wh_full.duckdb"
    monkeypatch.setenv("AIRFLOW_CONN_LAKE_DBT", json.dumps({
        "conn_type": "aws", "login": stack.access_key, "password": stack.secret_key,
        "extra": {"endpoint_url": stack.s3_endpoint, "region_name": "us-east-1"},
    }))
    monkeypatch.setenv("AIRFLOW_CONN_DUCKDB_DBT", json.dumps({"conn_type": "duckdb", "extra": {"path": str(db)}}))
    monkeypatch.setenv("AIRFLOW_CONN_DUCKDB_DBT_FULL", json.dumps({"conn_type": "duckdb", "extra": {"path": str(db_full)}}))

    # Two simulated stretches that end before now, so "the last 7 days" has data and no event is
    # stamped after its load.
    n1, n_rep, n2 = 30_000, 3_000, 15_000
    base = {"users": 300, "songs": 800}
    span = _core.estimated_span_ms({**base, "seed": 61}, n1 + n2)
    start = int(time.time() * 1000) - span - 6 * 3_600_000
    sim1 = {**base, "seed": 61, "start_ms": start,
            "faults": {"duplicate_rate": 0.02, "malformed_rate": 0.01, "late_rate": 0.02, "max_late_ms": 3_600_000}}
    sim2 = {**base, "seed": 62, "start_ms": start + _core.estimated_span_ms(sim1, n1),
            "faults": {"duplicate_rate": 0.03, "malformed_rate": 0.005, "late_rate": 0.05, "max_late_ms": 7_200_000}}

    def stage() -> dict:
        return StageToWarehouseOperator(task_id="stage", lake_url=lake["url"], lake_conn_id="lake_dbt",
                                        warehouse_conn_id="duckdb_dbt").execute(context={})

    def build(conn: str = "duckdb_dbt", **kwargs) -> dict:
        return DbtBuildOperator(task_id="dbt", project_dir=str(DBT_DIR), duckdb_conn_id=conn,
                                target_path=str(tmp_path / "target"), **kwargs).execute(context={})

    def check(duplicates: int, quarantined: int) -> dict:
        refused = quarantined_records(stack, lake_prefix, topic)
        by_reason: dict[str, int] = {}
        for r in refused:
            by_reason[r["reason"]] = by_reason.get(r["reason"], 0) + 1
        assert len(refused) == quarantined
        return check_gold_kpis(str(db), committed_bronze(stack, lake_prefix, topic), quarantined,
                               quarantined_by_reason=by_reason, duplicates=duplicates)

    # ---- load 1: faults of every kind, and records that break silver rules ----
    p1 = _core.produce(kafka, sim1, {"count": n1})
    _core.publish_reference(sim1, lake)
    breakers = _rule_breakers(sim1, stack.bootstrap, topic)
    _core.drain(kafka, lake, {"group_id": "dbt-it", "batch_max_records": 5_000})
    stage()
    out = build()
    assert out["success"] and not {"error", "fail"} & set(out["counts"])
    first = check(duplicates=p1["sim"]["duplicates"], quarantined=p1["sim"]["malformed"])
    assert first["quarantined"] > 0 and first["duplicate_deliveries"] > 0
    assert first["rejected_by_validation"] == len(breakers)
    with duckdb.connect(str(db), read_only=True) as con:
        validation = dict(con.execute("select reason, rejected_records from gold.kpi_rejected_events "
                                      "where rejected_by = 'silver_validation'").fetchall())
        drain = dict(con.execute("select reason, rejected_records from gold.kpi_rejected_events "
                                 "where rejected_by = 'drain'").fetchall())
        silver = con.execute("select count(*) from silver.stg_spotify__events").fetchone()[0]
    assert validation == breakers
    assert drain == {k: v for k, v in p1["sim"]["malformed_by_class"].items() if v}
    # silver = distinct events produced, minus those that break silver rules
    assert silver == p1["sim"]["valid"] - p1["sim"]["duplicates"] == first["silver_events"]

    # ---- load 2: the first 3,000 records again (duplicates across loads), then late events ----
    p_rep = _core.produce(kafka, sim1, {"count": n_rep})
    p2 = _core.produce(kafka, sim2, {"count": n2})
    _core.drain(kafka, lake, {"group_id": "dbt-it", "batch_max_records": 5_000})
    assert stage()["batches"] > 0
    build()  # incremental
    dups = p1["sim"]["duplicates"] + p_rep["sim"]["valid"] + p2["sim"]["duplicates"]
    second = check(duplicates=dups, quarantined=p1["sim"]["malformed"] + p_rep["sim"]["malformed"] + p2["sim"]["malformed"])
    assert second["silver_events"] == first["silver_events"] + p2["sim"]["valid"] - p2["sim"]["duplicates"]
    assert p2["sim"]["late"] > 0

    # ---- re-running the incremental build changes nothing ----
    before = {t: _gold_rows(db, t) for t in GOLD_TABLES + SILVER_INCREMENTAL}
    build()
    for t in GOLD_TABLES + SILVER_INCREMENTAL:
        assert _same_rows(_gold_rows(db, t), before[t]), f"gold.{t} changed on a re-run with no new data"

    # ---- the incremental result equals a full refresh of the same warehouse ----
    shutil.copy(db, db_full)
    build("duckdb_dbt_full", full_refresh=True)
    for t in GOLD_TABLES + SILVER_INCREMENTAL:
        assert _same_rows(_gold_rows(db_full, t), before[t]), f"{t}: incremental differs from full refresh"

    # ---- the hourly audit's whole-history tests (spotify_gold_audit) run alone and catch what a
    # stream's build leaves out: an event twice in gold ----
    from spotify_pipeline.operators.dbt import DbtBuildFailed

    audit = build("duckdb_dbt_full", select="tag:whole_history")
    assert audit["counts"] == {"pass": 6} and {n["resource_type"] for n in audit["nodes"]} == {"test"}
    with duckdb.connect(str(db_full)) as con:
        con.execute("insert into gold.fct_user_activity select * from gold.fct_user_activity limit 1")
    with pytest.raises(DbtBuildFailed, match="unique_fct_user_activity_event_id"):
        build("duckdb_dbt_full", select="tag:whole_history")
    with duckdb.connect(str(db_full)) as con:
        con.execute("create or replace table gold.fct_user_activity as select distinct * from gold.fct_user_activity")

    # ---- the checker is not a rubber stamp: a corrupted gold row fails it ----
    with duckdb.connect(str(db_full)) as con:
        con.execute("update gold.kpi_top_songs set plays = plays + 1 where play_rank = 3")
    with pytest.raises(GoldMismatch, match="kpi_top_songs"):
        check_gold_kpis(str(db_full), committed_bronze(stack, lake_prefix, topic), second["quarantined"])

    # ---- the seed README's sample query, as written ----
    with duckdb.connect(str(db), read_only=True) as con:
        sample = con.execute(SAMPLE_QUERY).fetchall()
        loads = con.execute("select batch_id, loaded_at from bronze._loads").df()
        songs = con.execute("select song_id, song_name, release_date, is_new_release from reference.songs").df()
    assert len(sample) == 10
    silver_df = recompute(committed_bronze(stack, lake_prefix, topic), loads, songs)["silver"]
    window = silver_df[silver_df["event_at"].dt.date >= (datetime.now().date() - timedelta(days=7))]
    expect = window.groupby(["song_name", "artist_name"]).agg(total=("event_id", "size"),
                                                              skip=("is_skip", "mean"))
    assert [r[2] for r in sample] == sorted(expect["total"], reverse=True)[:10]
    for song, artist, total, skip_rate in sample:
        assert (total, pytest.approx(skip_rate)) == (expect.loc[(song, artist), "total"], expect.loc[(song, artist), "skip"])

    # ---- the Snowflake target (on the fakesnow emulator) builds the same gold rows ----
    with monkeypatch.context() as m:
        for k, v in SNOWFLAKE_ENV.items():
            m.setenv(k, v)
        snow = _gold_on_fakesnow(db, tmp_path, GOLD_TABLES)
    for t in GOLD_TABLES:
        assert _same_rows(snow[t], before[t]), f"gold.{t}: the snowflake target built other rows than duckdb"

    # ---- dbt docs generate works on this warehouse ----
    from dbt.cli.main import dbtRunner

    monkeypatch.setenv("SPOTIFY_DUCKDB_PATH", str(db))
    docs = tmp_path / "docs"
    res = dbtRunner().invoke(["docs", "generate", "--project-dir", str(DBT_DIR), "--profiles-dir", str(DBT_DIR),
                              "--target-path", str(docs), "--quiet"])
    assert res.success, res.exception
    catalog = json.loads((docs / "catalog.json").read_text())
    manifest = json.loads((docs / "manifest.json").read_text())
    assert "date" in {c.lower() for c in catalog["nodes"]["model.spotify.fct_user_activity"]["columns"]}
    assert manifest["exposures"]["exposure.spotify.spotify_dashboard"]["url"] == "/spotify-dashboard/"
    undocumented = [n["unique_id"] for n in manifest["nodes"].values()
                    if n["resource_type"] in ("model", "seed", "snapshot") and not n.get("description")]
    assert undocumented == []
