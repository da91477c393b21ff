"""Produce -> drain -> stage on the real stack (real Kafka, real MinIO, real DuckDB), with every
layer reconciled by event_id against an independent reader."""

from __future__ import annotations

import json
import time

import duckdb
import pytest

import spotify_pipeline as sp
from reconcile import bronze_commits, committed_bronze, duplicates, list_keys, quarantined
from spotify_pipeline import _core
from spotify_pipeline.operators.stage import StageToWarehouseOperator

pytestmark = pytest.mark.integration

SIM = {"seed": 11, "start_ms": 1_768_435_200_000, "users": 200, "songs": 800}
PRODUCE = {"partitions": 3, "replication": 1, "compression": "lz4"}
DRAIN = {
    "group_id": "tests", "partitions": [], "dataset": "spotify_events", "batch_max_records": 700,
    "batch_max_bytes": 64 << 20, "max_records": None, "max_seconds": None, "idle_timeout_s": 30,
}


def expected_ids(sim: dict, n: int) -> list[str]:
    """event_id of every well-formed record the simulator makes for these settings, one per
    delivery (duplicates repeat)."""
    return [json.loads(e)["event_id"] for kind, e in _core.simulate(sim, n) if not kind.startswith("malformed")]


def stage(monkeypatch, stack, lake_prefix, topic, db_path) -> dict:
    monkeypatch.setenv("AIRFLOW_CONN_LAKE_TEST", json.dumps({
        "conn_type": "aws", "login": stack.access_key, "password": stack.secret_key,
        "extra": {"endpoint_url": stack.s3_endpoint},
    }))
    monkeypatch.setenv("AIRFLOW_CONN_DUCKDB_TEST", json.dumps({"conn_type": "duckdb", "extra": {"path": str(db_path)}}))
    op = StageToWarehouseOperator(
        task_id="stage", lake_url=f"s3://{stack.bucket}/{lake_prefix}", lake_conn_id="lake_test",
        warehouse_conn_id="duckdb_test",
    )
    return op.execute(context={})


def test_every_layer_reconciles_by_event_id(stack, topic, lake_prefix, tmp_path, monkeypatch):
    n1, n2 = 5_000, 1_234
    produced = _core.produce(stack.kafka(topic), SIM, {**PRODUCE, "count": n1})
    assert produced["events"] == n1 == sum(p["count"] for p in produced["partitions"])

    drained = _core.drain(stack.kafka(topic), stack.lake(lake_prefix), DRAIN)
    assert (drained["rows"], drained["quarantined"]) == (n1, 0)
    assert all(p["lag"] == 0 for p in drained["partitions"])

    bronze = committed_bronze(stack, lake_prefix, topic)
    ids = bronze.column("event_id").to_pylist()
    assert duplicates(ids) == {}
    assert sorted(ids) == sorted(expected_ids(SIM, n1))
    # (partition, offset) covers exactly what the producer acknowledged.
    coords = sorted(zip(bronze.column("kafka_partition").to_pylist(), bronze.column("kafka_offset").to_pylist()))
    assert coords == sorted((p["partition"], o) for p in produced["partitions"] for o in range(p["first_offset"], p["last_offset"] + 1))
    # Each file sits in the date/hour partition of its records' arrival (Kafka timestamp), not
    # of their event time: the simulated events span days, the drain wrote one or two hours.
    for key, ts, date, hour in zip(*(bronze.column(c).to_pylist() for c in ("file_key", "kafka_ts", "date", "hour"))):
        assert (f"{ts:%Y-%m-%d}", ts.hour) == (date, hour) and f"date={date}/hour={hour}/" in key
    assert len({(d, h) for d, h in zip(bronze.column("date").to_pylist(), bronze.column("hour").to_pylist())}) <= 2
    # No data file that no commit adds (a clean drain leaves no orphan).
    listed = set(bronze.column("file_key").to_pylist())
    on_disk = {k.removeprefix(f"{lake_prefix}/") for k in list_keys(stack.s3(), stack.bucket, f"{lake_prefix}/bronze/spotify_events/") if "/_delta_log/" not in k}
    assert listed == on_disk

    # Exactly once: a second drain finds nothing; new records are drained once.
    again = _core.drain(stack.kafka(topic), stack.lake(lake_prefix), DRAIN)
    assert (again["rows"], again["batches"]) == (0, [])
    sim2 = {**SIM, "seed": 12}
    _core.produce(stack.kafka(topic), sim2, {**PRODUCE, "count": n2})
    assert _core.drain(stack.kafka(topic), stack.lake(lake_prefix), DRAIN)["rows"] == n2
    bronze = committed_bronze(stack, lake_prefix, topic)
    assert sorted(bronze.column("event_id").to_pylist()) == sorted(expected_ids(SIM, n1) + expected_ids(sim2, n2))

    # Warehouse: same rows, same ids, one file-ledger row per data file, the version ledger at
    # the table's last version; a re-run loads nothing.
    db = tmp_path / "wh.duckdb"
    first = stage(monkeypatch, stack, lake_prefix, topic, db)
    n_files = len(set(bronze.column("file_key").to_pylist()))
    last_version = bronze_commits(stack, lake_prefix)[-1][0]
    assert (first["rows"], first["files"], first["versions"]["events"]) == (n1 + n2, n_files, [0, last_version])
    second = stage(monkeypatch, stack, lake_prefix, topic, db)
    assert (second["rows"], second["files"], second["versions"]) == (0, 0, {})
    with duckdb.connect(str(db), read_only=True) as con:
        wh_ids = [r[0] for r in con.execute("select event_id from bronze.spotify_events").fetchall()]
        ledger = con.execute("select count(*), sum(rows) from bronze._loads where table_name = 'events'").fetchone()
        versions = con.execute("select max(last_version) from bronze._load_versions where table_name = 'events'").fetchone()[0]
        files = con.execute("select count(distinct source_file) from bronze.spotify_events").fetchone()[0]
    assert sorted(wh_ids) == sorted(bronze.column("event_id").to_pylist())
    assert ledger == (n_files, n1 + n2) and versions == last_version
    assert files == n_files


def test_bad_records_are_quarantined_with_reasons(stack, topic, lake_prefix):
    from confluent_kafka import Producer

    good = [e.decode() for _, e in _core.simulate(SIM, 40)]
    base = json.loads(good[0])
    bad = {
        "invalid_json": [b'{"event_id": "x", ', b"not json at all"],
        "not_utf8": [b'{"event_id": "\xff\xfe"}'],
        "missing_field": [json.dumps({k: v for k, v in base.items() if k != "song_id"}).encode()],
        "wrong_type": [json.dumps({**base, "duration_ms": "three minutes"}).encode()],
        "unknown_event_type": [json.dumps({**base, "event_type": "dance"}).encode()],
        "bad_timestamp": [json.dumps({**base, "event_ts": "yesterday"}).encode()],
        "oversized": [json.dumps({**base, "padding": "x" * 70_000}).encode()],
    }
    _core.produce(stack.kafka(topic), SIM, {**PRODUCE, "count": 0})  # creates the topic
    p = Producer({"bootstrap.servers": stack.bootstrap, "enable.idempotence": True})
    payloads = [e.encode() for e in good[:20]] + [x for xs in bad.values() for x in xs] + [e.encode() for e in good[20:]]
    payloads.append(json.dumps({**json.loads(good[0]), "event_id": "with-extra", "mood": "happy"}).encode())
    for i, payload in enumerate(payloads):
        p.produce(topic, value=payload, key=str(i % 3), partition=i % 3)
    assert p.flush(30) == 0

    d = _core.drain(stack.kafka(topic), stack.lake(lake_prefix), DRAIN)
    n_bad = sum(len(v) for v in bad.values())
    assert d["quarantined_by_reason"] == {k: len(v) for k, v in bad.items()}
    assert (d["rows"], d["quarantined"]) == (41, n_bad)
    assert d["rows"] + d["quarantined"] == len(payloads)  # produced = bronze + quarantined

    q = quarantined(stack, lake_prefix, topic)
    assert sorted(r["reason"] for r in q) == sorted(k for k, v in bad.items() for _ in v)
    assert all({"kafka_partition", "kafka_offset", "detail"} <= r.keys() for r in q)
    assert [r for r in q if r["reason"] == "not_utf8"][0]["payload_base64"] == "eyJldmVudF9pZCI6ICL//iJ9"
    bronze = committed_bronze(stack, lake_prefix, topic)
    extra = [json.loads(x) for i, x in zip(bronze.column("event_id").to_pylist(), bronze.column("extra_fields").to_pylist()) if i == "with-extra"]
    assert extra == [{"mood": "happy"}]  # unknown fields kept, not dropped


@pytest.mark.parametrize("call", ["produce", "drain"])
def test_unreachable_broker_fails_fast_with_a_clear_error(call, tmp_path):
    kafka = {"client": {"bootstrap.servers": "127.0.0.1:1"}, "topic": "t", "timeout_s": 5}
    started = time.monotonic()
    with pytest.raises(sp.BrokerUnavailableError, match="127.0.0.1:1"):
        if call == "produce":
            _core.produce(kafka, SIM, {**PRODUCE, "count": 10})
        else:
            _core.drain(kafka, {"url": f"file://{tmp_path}", "options": {}}, DRAIN)
    assert time.monotonic() - started < 30


def test_wrong_lake_endpoint_fails_fast_with_a_clear_error(stack, topic):
    lake = stack.lake("x")
    lake["options"]["aws_endpoint"] = "http://127.0.0.1:1"
    started = time.monotonic()
    with pytest.raises(sp.LakeError, match="cannot reach the lake"):
        _core.drain(stack.kafka(topic), lake, DRAIN)
    with pytest.raises(sp.LakeError):
        _core.pending_versions(lake, "spotify_events", -1, -1)
    assert time.monotonic() - started < 60


def test_draining_a_missing_topic_says_so(stack, lake_prefix):
    with pytest.raises(sp.KafkaError, match="does not exist"):
        _core.drain(stack.kafka("no_such_topic_here"), stack.lake(lake_prefix), DRAIN)


def test_the_raw_option_keeps_each_record_as_it_came_and_stages_typed(stack, topic, lake_prefix, tmp_path, monkeypatch):
    n = 3_000
    sim = {**SIM, "faults": {"malformed_rate": 0.01, "duplicate_rate": 0.01}}
    records = _core.simulate(sim, n)
    produced = _core.produce(stack.kafka(topic), sim, {**PRODUCE, "count": n})
    drained = _core.drain(stack.kafka(topic), stack.lake(lake_prefix), {**DRAIN, "raw": True})
    assert drained["rows"] == produced["sim"]["valid"] and drained["quarantined_by_reason"] == produced["sim"]["malformed_by_class"]
    bronze = committed_bronze(stack, lake_prefix, topic)
    # Each record's bytes exactly as produced, beside its typed columns and coordinates.
    produced_bytes = sorted(r for kind, r in records if not kind.startswith("malformed"))
    assert sorted(bronze.column("raw").to_pylist()) == produced_bytes
    assert all(json.loads(raw)["event_id"] == eid for raw, eid in zip(bronze.column("raw").to_pylist(), bronze.column("event_id").to_pylist()))
    coords = list(zip(bronze.column("kafka_partition").to_pylist(), bronze.column("kafka_offset").to_pylist()))
    assert duplicates(coords) == {}

    db = tmp_path / "wh.duckdb"
    staged = stage(monkeypatch, stack, lake_prefix, topic, db)
    assert staged["rows"] == bronze.num_rows
    with duckdb.connect(str(db), read_only=True) as con:
        wh = sorted(con.execute("select kafka_partition, kafka_offset from bronze.spotify_events").fetchall())
        typed = con.execute("select typeof(event_ts), typeof(raw), count(distinct source_file) from bronze.spotify_events group by all").fetchall()
        raws = sorted(r[0] for r in con.execute("select raw from bronze.spotify_events").fetchall())
    assert wh == sorted(coords)
    assert typed[0][:2] == ("TIMESTAMP", "BLOB") and typed[0][2] == len(set(bronze.column("file_key").to_pylist()))
    assert raws == produced_bytes
