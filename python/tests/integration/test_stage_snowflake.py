"""The Snowflake staging path on the real stack (Kafka, MinIO), with Snowflake itself played by
fakesnow, a DuckDB-backed emulator of Snowflake's SQL and of its Python connector.

What this verifies: our statements (CREATE STAGE, PUT, COPY INTO … MATCH_BY_COLUMN_NAME, the
ledger in the same transaction, DELETE + COPY of the reference tables) run through the
provider's SnowflakeHook, and the counts reconcile by (partition, offset) with the lake read
independently. What it cannot verify: Snowflake's own behaviour (real PUT to cloud storage,
load metadata, transaction semantics beyond what DuckDB gives the emulator, performance).
"""

from __future__ import annotations

import json
import uuid
from collections import Counter

import fakesnow  # the Snowflake emulator, a declared dev dependency (requirements/dev.lock)
import pytest

from reconcile import bronze_commits, committed_bronze, quarantined
from spotify_pipeline import _core
from spotify_pipeline.hooks.snowflake import SnowflakeWarehouseHook
from spotify_pipeline.operators.stage import StageToWarehouseOperator

pytestmark = pytest.mark.integration

SIM = {"seed": 51, "start_ms": 1_772_323_200_000, "users": 200, "songs": 500,
       "faults": {"malformed_rate": 0.03, "duplicate_rate": 0.02, "late_rate": 0.02, "max_late_ms": 3_600_000}}
DRAIN = {"group_id": "snowflake-tests", "batch_max_records": 700, "commit_interval_ms": 0}


@pytest.fixture
def snowflake(monkeypatch, tmp_path):
    monkeypatch.setenv("AIRFLOW_CONN_SNOWFLAKE_FAKE", json.dumps({
        "conn_type": "snowflake", "login": "loader", "password": "secret", "schema": "BRONZE",
        "extra": {"account": "fake-account", "warehouse": "LOAD_WH", "database": "SPOTIFY", "role": "LOADER"},
    }))
    # On disk, so every connection the operator opens sees the same "account".
    (tmp_path / "fakesnow").mkdir()
    with fakesnow.patch(create_database_on_connect=True, create_schema_on_connect=True, db_path=str(tmp_path / "fakesnow")):
        yield SnowflakeWarehouseHook("snowflake_fake")


def rows(hook: SnowflakeWarehouseHook, sql: str) -> list[tuple]:
    with hook.connect() as con:
        cur = con.cursor()
        cur.execute(sql)
        return cur.fetchall()


def test_snowflake_path_loads_exactly_once_with_quarantine_and_reference(stack, topic, lake_prefix, snowflake, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_LAKE_SF", json.dumps({
        "conn_type": "aws", "login": stack.access_key, "password": stack.secret_key, "extra": {"endpoint_url": stack.s3_endpoint},
    }))
    kafka, lake = stack.kafka(topic), stack.lake(lake_prefix)
    _core.publish_reference(SIM, lake)
    produced = _core.produce(kafka, SIM, {"count": 4_000})
    drained = _core.drain(kafka, lake, DRAIN)
    assert len(drained["batches"]) >= 4 and drained["quarantined"] > 0 and drained["commits"] >= 2

    def stage(**kw):
        return StageToWarehouseOperator(
            task_id="stage", lake_url=lake["url"], lake_conn_id="lake_sf", warehouse_conn_id="snowflake_fake",
            chunk_versions=1, **kw,
        ).execute(context={})

    # A load that fails after COPY INTO rolls back whole: no rows and no ledger entry survive.
    calls = {"n": 0}
    real_count = SnowflakeWarehouseHook._count

    def failing_count(self, cur, table):
        calls["n"] += 1
        if calls["n"] == 2:  # right after the first COPY INTO of the first chunk
            raise RuntimeError("injected failure after COPY INTO")
        return real_count(self, cur, table)

    monkeypatch.setattr(SnowflakeWarehouseHook, "_count", failing_count)
    with pytest.raises(RuntimeError, match="injected"):
        stage(load_reference=False)
    monkeypatch.setattr(SnowflakeWarehouseHook, "_count", real_count)
    assert rows(snowflake, "SELECT count(*) FROM bronze.spotify_events") == [(0,)]
    assert rows(snowflake, "SELECT count(*) FROM bronze._loads") == [(0,)]

    first = stage()
    bronze = committed_bronze(stack, lake_prefix, topic)
    quarantine = quarantined(stack, lake_prefix, topic)
    n_files = len(set(bronze.column("file_key").to_pylist()))
    assert first["warehouse"] == "snowflake" and first["batches"] == n_files and first["loads"] >= 2
    assert first["rows"] == bronze.num_rows == drained["rows"] and first["quarantined"] == len(quarantine)

    # Every committed (partition, offset) is in the warehouse exactly once, with its source file.
    lake_keys = Counter(zip(bronze["kafka_partition"].to_pylist(), bronze["kafka_offset"].to_pylist()))
    wh_keys = Counter(rows(snowflake, "SELECT kafka_partition, kafka_offset FROM bronze.spotify_events"))
    assert wh_keys == lake_keys and max(wh_keys.values()) == 1
    assert Counter(r[0] for r in rows(snowflake, "SELECT event_id FROM bronze.spotify_events")) == Counter(bronze["event_id"].to_pylist())
    sources = {r[0] for r in rows(snowflake, "SELECT DISTINCT source_file FROM bronze.spotify_events")}
    assert sources and all(s.startswith("bronze/spotify_events/date=") and s.endswith(".parquet") for s in sources)

    # Quarantine: every refused record with its reason and raw bytes; produced = bronze + quarantined.
    wh_q = rows(snowflake, "SELECT kafka_partition, kafka_offset, reason, payload IS NOT NULL OR payload_base64 IS NOT NULL FROM bronze.spotify_events_quarantine")
    assert Counter((p, o, r) for p, o, r, _ in wh_q) == Counter((q["kafka_partition"], q["kafka_offset"], q["reason"]) for q in quarantine)
    assert all(has_payload for *_, has_payload in wh_q)
    assert Counter(r for _, _, r, _ in wh_q) == Counter(produced["sim"]["malformed_by_class"])
    assert produced["sim"]["records"] == bronze.num_rows + len(quarantine)

    # The file ledger lists every data file with its rows; the version ledger reaches the tables'
    # last versions; reference tables are there.
    ledger = rows(snowflake, "SELECT source_file, rows FROM bronze._loads WHERE table_name = 'events'")
    assert Counter(dict(ledger)) == Counter(bronze.column("file_key").to_pylist())
    versions = dict(rows(snowflake, "SELECT table_name, max(last_version) FROM bronze._load_versions GROUP BY table_name"))
    assert versions["events"] == bronze_commits(stack, lake_prefix)[-1][0]
    assert first["reference"]["songs"] == SIM["songs"] and first["reference"]["users"] == SIM["users"]
    assert rows(snowflake, "SELECT count(*) FROM reference.songs") == [(SIM["songs"],)]
    # The lake key's catalog=<seed>-<songs>-<users> is a column, as in DuckDB (dbt joins on it).
    assert rows(snowflake, "SELECT DISTINCT catalog FROM reference.users") == [(f"2026-{SIM['songs']}-{SIM['users']}",)]

    # Re-run: a no-op, and the reference tables are replaced, not appended to.
    again = stage()
    assert again["batches"] == 0 and again["versions"] == {}
    assert rows(snowflake, "SELECT count(*) FROM bronze.spotify_events") == [(bronze.num_rows,)]
    assert rows(snowflake, "SELECT count(*) FROM reference.songs") == [(SIM["songs"],)]



def test_two_loaders_of_one_range_record_it_once(stack, topic, lake_prefix, snowflake, tmp_path, monkeypatch):
    """Loader A holds a load transaction open (lock taken, ledger checked) when loader B, on
    another connection, loads the same range. Without the lock B would pass the ledger check
    (A has committed nothing) and load: with A's rows, twice. With it, B waits for A in
    Snowflake; in fakesnow (DuckDB underneath) B's UPDATE of the lock row conflicts at once.
    Either way B records nothing while A holds the lock, and each range is recorded once."""
    from spotify_pipeline.operators.stage import StageToWarehouseOperator

    monkeypatch.setenv("AIRFLOW_CONN_LAKE_SF", json.dumps({
        "conn_type": "aws", "login": stack.access_key, "password": stack.secret_key, "extra": {"endpoint_url": stack.s3_endpoint},
    }))
    kafka, lake = stack.kafka(topic), stack.lake(lake_prefix)
    _core.produce(kafka, SIM, {"count": 1_000})
    drained = _core.drain(kafka, lake, DRAIN)
    op = StageToWarehouseOperator(task_id="stage", lake_url=lake["url"], lake_conn_id="lake_sf", warehouse_conn_id="snowflake_fake")
    stager = op.stager(lake)
    [chunk] = stager.chunks(_core.pending_versions(lake, "spotify_events", -1, -1), {"events": -1, "quarantine": -1}) or [None]

    def prepared() -> dict:
        return stager.prepare(lake, json.loads(json.dumps(chunk)), str(tmp_path / uuid.uuid4().hex), lambda *_: None, True)

    with snowflake.connect() as a, snowflake.connect() as b:
        snowflake.ensure_tables(a)
        cur_a = a.cursor()
        cur_a.execute("BEGIN")
        assert snowflake.claim(a, cur_a, chunk, "loader-a")
        try:
            loaded_by_b = snowflake.load_range(b, prepared())
        except Exception as e:  # noqa: BLE001 - fakesnow: the UPDATE of the lock row conflicts
            assert "onflict" in str(e), e
            loaded_by_b = False
        assert loaded_by_b is False
        assert rows(snowflake, "SELECT count(*) FROM bronze._load_versions") == [(0,)]
        cur_a.execute("ROLLBACK")
        assert snowflake.load_range(b, prepared()) is True  # A let go: B loads
        assert snowflake.load_range(a, prepared()) is False  # and A, again, loads nothing
    assert rows(snowflake, "SELECT count(*) FROM bronze.spotify_events") == [(drained["rows"],)]
    assert rows(snowflake, "SELECT table_name, count(*) FROM bronze._load_versions GROUP BY 1 ORDER BY 1") == [
        (t, 1) for t in sorted(chunk)
    ]
