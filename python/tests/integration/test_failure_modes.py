"""The failures a deployment meets, each on the real stack (Kafka, MinIO, DuckDB, dbt): what
happens, and that nothing is lost. The README's "Failure modes" table points here."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import duckdb
import pytest

import spotify_pipeline as sp
from reconcile import committed_bronze, list_keys, quarantined
from spotify_pipeline import _core

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
SIM = {"seed": 71, "start_ms": 1_772_323_200_000, "users": 200, "songs": 500}
DRAIN = {"group_id": "failure-modes", "batch_max_records": 1_000, "idle_timeout_s": 30}


@pytest.fixture
def connections(stack, lake_prefix, tmp_path, monkeypatch) -> dict:
    """Airflow connections to the stack's lake and to a DuckDB file in tmp_path (waiting at most
    3 s for other processes holding it)."""
    db = tmp_path / "wh.duckdb"
    monkeypatch.setenv("AIRFLOW_CONN_LAKE_FM", json.dumps({
        "conn_type": "aws", "login": stack.access_key, "password": stack.secret_key, "extra": {"endpoint_url": stack.s3_endpoint},
    }))
    monkeypatch.setenv("AIRFLOW_CONN_DUCKDB_FM", json.dumps({"conn_type": "duckdb", "extra": {"path": str(db), "lock_timeout_s": 3}}))
    return {"db": str(db), "lake_url": stack.lake(lake_prefix)["url"]}


def stage(connections) -> dict:
    from spotify_pipeline.operators.stage import StageToWarehouseOperator

    return StageToWarehouseOperator(
        task_id="stage", lake_url=connections["lake_url"], lake_conn_id="lake_fm", warehouse_conn_id="duckdb_fm", load_reference=False,
    ).execute(context={})


def produce_raw(stack, topic: str, values: list[bytes | None], partitions: int = 1) -> None:
    """Writes `values` with confluent-kafka (a client that is not ours), round-robin over partitions."""
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": stack.bootstrap, "enable.idempotence": True})
    for i, v in enumerate(values):
        p.produce(topic, value=v, partition=i % partitions)
    assert p.flush(30) == 0


def create_topic(stack, topic: str, partitions: int = 1, **config: str) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": stack.bootstrap})  # kept alive until the result
    admin.create_topics([NewTopic(topic, partitions, 1, config=config)])[topic].result(30)


def watermarks(stack, topic: str) -> dict[int, tuple[int, int]]:
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": stack.bootstrap, "group.id": "watermarks"})
    try:
        parts = c.list_topics(topic, timeout=30).topics[topic].partitions
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=30, cached=False) for p in parts}
    finally:
        c.close()


def warehouse_rows(db: str, sql: str) -> list[tuple]:
    with duckdb.connect(db, read_only=True) as con:
        return con.execute(sql).fetchall()


# 1 -------------------------------------------------------------------------------------------
def test_a_drain_of_only_malformed_records_stages_its_quarantine_rows_and_ledger(stack, topic, lake_prefix, connections):
    create_topic(stack, topic)
    produce_raw(stack, topic, [b"not json", b'{"event_id": 1'])
    d = _core.drain(stack.kafka(topic), stack.lake(lake_prefix), DRAIN)
    assert (d["rows"], d["quarantined"]) == (0, 2)

    first = stage(connections)
    assert (first["rows"], first["quarantined"]) == (0, 2)
    assert warehouse_rows(connections["db"], "select count(*) from bronze.spotify_events") == [(0,)]
    got = warehouse_rows(connections["db"], "select kafka_offset, reason from bronze.spotify_events_quarantine order by 1")
    assert got == [(0, "invalid_json"), (1, "invalid_json")]
    ledger = warehouse_rows(connections["db"], "select table_name, files, rows from bronze._load_versions order by 1")
    assert ledger == [("events", 0, 0), ("quarantine", 1, 2)]  # the events table's commit moved its txns only
    # The next stage has nothing to do, and is not blocked by it.
    assert stage(connections)["files"] == 0
    produce_raw(stack, topic, [e for _, e in _core.simulate(SIM, 5)])
    _core.drain(stack.kafka(topic), stack.lake(lake_prefix), DRAIN)
    assert stage(connections)["rows"] == 5


# 2 -------------------------------------------------------------------------------------------
READER = """
import duckdb, sys, time
path, until = sys.argv[1], time.monotonic() + float(sys.argv[2])
opened = 0
print("reading", flush=True)
while time.monotonic() < until:
    try:
        with duckdb.connect(path, read_only=True) as con:
            con.execute("select count(*) from information_schema.tables").fetchall()
            opened += 1
            time.sleep(float(sys.argv[3]))
    except duckdb.IOException:
        pass  # the writer has it: a dashboard would serve its last snapshot
    time.sleep(0.02)
print(opened, flush=True)
"""


def start_reader(db: str, seconds: float, hold_s: float) -> subprocess.Popen:
    """A process that opens the DuckDB file read-only again and again, holding it `hold_s` each time."""
    proc = subprocess.Popen([sys.executable, "-c", READER, db, str(seconds), str(hold_s)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "reading"
    return proc


def test_a_stage_and_a_dbt_build_wait_out_a_polling_reader_and_name_one_that_stays(stack, topic, lake_prefix, connections):
    from spotify_pipeline.hooks.duckdb_lock import WarehouseBusy
    from spotify_pipeline.operators.dbt import DbtBuildOperator

    kafka, lake = stack.kafka(topic), stack.lake(lake_prefix)
    _core.produce(kafka, SIM, {"count": 3_000})
    _core.publish_reference(SIM, lake)
    _core.drain(kafka, lake, DRAIN)
    duckdb.connect(connections["db"]).close()  # the file exists: the reader can open it from the start

    reader = start_reader(connections["db"], seconds=600, hold_s=0.3)
    try:
        from spotify_pipeline.operators.stage import StageToWarehouseOperator

        out = StageToWarehouseOperator(task_id="stage", lake_url=lake["url"], lake_conn_id="lake_fm", warehouse_conn_id="duckdb_fm").execute(context={})
        assert out["rows"] == 3_000
        build = DbtBuildOperator(task_id="dbt", project_dir=str(ROOT / "dbt"), duckdb_conn_id="duckdb_fm", command="run",
                                 select=["+stg_spotify__events"])
        assert build.execute(context={})["success"]
    finally:
        reader.kill()
        reader.wait()
    assert warehouse_rows(connections["db"], "select count(*) from silver.stg_spotify__events") == [(3_000,)]

    # A reader that does not let go: the stage waits lock_timeout_s (3 s), then names it.
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb, time; c = duckdb.connect({connections['db']!r}, read_only=True); print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        with pytest.raises(WarehouseBusy, match=rf"still held by PID {holder.pid} \(.*python"):
            stage(connections)
        assert 3 <= time.monotonic() - started < 15
        with pytest.raises(WarehouseBusy, match=f"PID {holder.pid}"):
            DbtBuildOperator(task_id="dbt", project_dir=str(ROOT / "dbt"), duckdb_conn_id="duckdb_fm").execute(context={})
    finally:
        holder.kill()
        holder.wait()


# 4 -------------------------------------------------------------------------------------------
def test_records_retention_deleted_before_the_drain_fail_it_unless_data_loss_is_allowed(stack, topic, lake_prefix, connections):
    from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

    from spotify_pipeline.operators.dbt import DbtBuildOperator
    from spotify_pipeline.operators.stage import StageToWarehouseOperator

    kafka, lake = stack.kafka(topic), stack.lake(lake_prefix)
    _core.publish_reference(SIM, lake)
    create_topic(stack, topic, partitions=2)
    _core.produce(kafka, SIM, {"count": 400, "partitions": 2})
    first = _core.drain(kafka, lake, DRAIN)
    drained = {p["partition"]: p["next_offset"] for p in first["partitions"]}

    # Retention of one second (the test stack checks retention every 5 s): the next records are
    # deleted before any drain sees them.
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[
        ConfigEntry("retention.ms", "1000", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("segment.ms", "1000", incremental_operation=AlterConfigOpType.SET),
    ])
    admin = AdminClient({"bootstrap.servers": stack.bootstrap})
    for f in admin.incremental_alter_configs([resource]).values():
        f.result(30)
    _core.produce(kafka, {**SIM, "seed": 72}, {"count": 600, "partitions": 2})
    deadline = time.monotonic() + 90
    while any(low < high for low, high in watermarks(stack, topic).values()):
        assert time.monotonic() < deadline, f"retention did not delete the records: {watermarks(stack, topic)}"
        time.sleep(1)
    marks = watermarks(stack, topic)

    with pytest.raises(sp.DataError, match="retention deleted records") as refused:
        _core.drain(kafka, lake, DRAIN)
    for p, (low, _) in marks.items():
        assert f"partition {p}: offsets {drained[p]}..{low - 1} ({low - drained[p]} records)" in str(refused.value)
    assert len(committed_bronze(stack, lake_prefix, topic)) == 400  # nothing more was committed

    allowed = _core.drain(kafka, lake, {**DRAIN, "allow_data_loss": True})
    assert allowed["lost_to_retention"] == 600 and allowed["rows"] == 0
    assert {p["partition"]: p["lost_to_retention"] for p in allowed["partitions"]} == {p: low - drained[p] for p, (low, _) in marks.items()}
    # The loss is recorded once: the lake's txns moved past it, and the next drain is clean.
    again = _core.drain(kafka, lake, DRAIN)
    assert again["lost_to_retention"] == 0

    # The warehouse counts it: the stage loads the commit's record of it, and gold reports it.
    staged = StageToWarehouseOperator(task_id="stage", lake_url=connections["lake_url"], lake_conn_id="lake_fm",
                                      warehouse_conn_id="duckdb_fm").execute(context={})
    assert (staged["rows"], staged["lost_to_retention"]) == (400, 600)
    lost = warehouse_rows(connections["db"], "select kafka_partition, from_offset, to_offset, records from bronze._lost_records order by 1")
    assert lost == [(p, drained[p], low - 1, low - drained[p]) for p, (low, _) in sorted(marks.items())]
    assert stage(connections)["lost_to_retention"] == 0  # loaded once
    for command in ("seed", "run"):
        DbtBuildOperator(task_id="dbt", project_dir=str(ROOT / "dbt"), duckdb_conn_id="duckdb_fm", command=command,
                         select=["+kpi_pipeline_reconciliation"]).execute(context={})
    recon = warehouse_rows(connections["db"], "select bronze_deliveries, lost_to_retention from gold.kpi_pipeline_reconciliation")
    assert recon == [(400, 600)]


# 5 -------------------------------------------------------------------------------------------
def test_a_topic_deleted_and_created_again_fails_the_drain_until_reset(stack, topic, lake_prefix):
    from confluent_kafka.admin import AdminClient

    kafka, lake = stack.kafka(topic), stack.lake(lake_prefix)
    create_topic(stack, topic)
    _core.produce(kafka, SIM, {"count": 500, "partitions": 1})
    assert _core.drain(kafka, lake, DRAIN)["rows"] == 500
    admin = AdminClient({"bootstrap.servers": stack.bootstrap})
    admin.delete_topics([topic])[topic].result(30)
    deadline = time.monotonic() + 60
    while True:  # the broker forgets a deleted topic asynchronously
        try:
            create_topic(stack, topic)
            break
        except Exception:  # noqa: BLE001 - TOPIC_ALREADY_EXISTS while the deletion completes
            assert time.monotonic() < deadline
            time.sleep(1)
    _core.produce(kafka, {**SIM, "seed": 73}, {"count": 200, "partitions": 1})

    with pytest.raises(sp.DataError, match="deleted and created again"):
        _core.drain(kafka, lake, DRAIN)
    with pytest.raises(sp.DataError, match="deleted and created again"):
        _core.lag(kafka, lake)
    reset = _core.drain(kafka, lake, {**DRAIN, "reset_offsets": True})
    assert reset["rows"] == 200 and any("reset_offsets" in w for w in reset["warnings"])
    assert len(committed_bronze(stack, lake_prefix, topic)) == 700


# 7 -------------------------------------------------------------------------------------------
def test_a_missing_bronze_file_fails_the_stage_naming_it_and_loads_nothing(stack, topic, lake_prefix, connections):
    kafka, lake = stack.kafka(topic), stack.lake(lake_prefix)
    _core.produce(kafka, SIM, {"count": 3_000})
    _core.drain(kafka, lake, DRAIN)
    s3 = stack.s3()
    data = [k for k in list_keys(s3, stack.bucket, f"{lake_prefix}/bronze/spotify_events/") if k.endswith(".parquet")]
    assert len(data) >= 3
    s3.delete_object(Bucket=stack.bucket, Key=data[1])

    with pytest.raises(sp.DataError, match="missing from the lake") as missing:
        stage(connections)
    assert data[1].removeprefix(f"{lake_prefix}/") in str(missing.value)
    tables = warehouse_rows(connections["db"], "select count(*) from bronze.spotify_events")
    assert tables == [(0,)]
    assert warehouse_rows(connections["db"], "select count(*) from bronze._load_versions") == [(0,)]


# 8 -------------------------------------------------------------------------------------------
# The peak is VmHWM, this process's own: getrusage's ru_maxrss also counts the parent's pages
# from before exec (pytest's ~420 MB, on Linux).
DRAIN_RSS = """
import json, re, sys
from spotify_pipeline import _core
d = _core.drain(json.loads(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3]))
peak_kb = int(re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1))
print(json.dumps({"rows": d["rows"], "quarantined": d["quarantined"], "peak_kb": peak_kb}))
"""


def test_large_valid_records_keep_the_drains_memory_bounded(stack, topic, lake_prefix):
    base = [json.loads(e) for _, e in _core.simulate(SIM, 2_000)]
    # Valid records of ~60 KB (just under the 64 KiB contract limit), the first of each batch among them.
    values = [json.dumps({**r, "note": "x" * (60_000 if i % 4 == 0 else 10)}).encode() for i, r in enumerate(base)]
    create_topic(stack, topic)
    produce_raw(stack, topic, values)
    out = subprocess.run(
        [sys.executable, "-c", DRAIN_RSS, json.dumps(stack.kafka(topic)), json.dumps(stack.lake(lake_prefix)),
         json.dumps({**DRAIN, "batch_max_records": 500})],
        capture_output=True, text=True, check=True, timeout=300,
    )
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert (got["rows"], got["quarantined"]) == (2_000, 0)
    # ~30 MB of records: 96-104 MB peak here (48 MB for the same count of ordinary records);
    # before the builders' reservations were capped, one such record reserved ~1.2 GB.
    assert got["peak_kb"] < 256 * 1024, got


# 10 ------------------------------------------------------------------------------------------
def test_an_impossible_release_date_is_quarantined_not_rolled_over(stack, topic, lake_prefix):
    base = json.loads(_core.simulate(SIM, 1)[0][1])
    create_topic(stack, topic)
    produce_raw(stack, topic, [json.dumps({**base, "event_id": str(uuid.uuid4()), "release_date": d}).encode()
                               for d in ("2025-02-31", "2024-02-29", "2025-13-01")])
    d = _core.drain(stack.kafka(topic), stack.lake(lake_prefix), DRAIN)
    assert (d["rows"], d["quarantined"]) == (1, 2)
    assert committed_bronze(stack, lake_prefix, topic).column("release_date").to_pylist()[0].isoformat() == "2024-02-29"
    assert sorted(r["kafka_offset"] for r in quarantined(stack, lake_prefix, topic)) == [0, 2]


# 9 -------------------------------------------------------------------------------------------
def test_records_from_another_producer_follow_the_contract(stack, topic, lake_prefix):
    """Written by confluent-kafka, not our producer: what other producers really send. The
    contract (README, "Records from other producers") accepts JSON in any field order or layout,
    every RFC 3339 timestamp (kept to the microsecond), unicode escapes, keys or none, and a
    byte order mark; it quarantines tombstones and empty values (empty_value) and timestamps
    without an offset (bad_timestamp)."""
    base = json.loads(_core.simulate(SIM, 1)[0][1])
    at = "2026-03-01 10:00:00+00:00"

    def event(**fields) -> dict:
        return {**base, "event_id": str(uuid.uuid4()), **fields}

    accepted: list[tuple[str, bytes | None, bytes | None, str]] = [  # name, key, value, event_ts read back
        ("fields in another order", b"k", json.dumps(dict(reversed(list(event(event_ts="2026-03-01T10:00:00Z").items())))).encode(), at),
        ("pretty-printed", b"k", json.dumps(event(event_ts="2026-03-01T10:00:00Z"), indent=2).encode(), at),
        ("no key", None, json.dumps(event(event_ts="2026-03-01T10:00:00Z")).encode(), at),
        ("unicode escapes", b"k", json.dumps(event(event_ts="2026-03-01T10:00:00Z", song_name="Caf\u00e9 \U0001F3B5"), ensure_ascii=True).encode(), at),
        ("byte order mark", b"k", b"\xef\xbb\xbf" + json.dumps(event(event_ts="2026-03-01T10:00:00Z")).encode(), at),
        ("no fraction", b"k", json.dumps(event(event_ts="2026-03-01T10:00:00Z")).encode(), at),
        ("one fractional digit", b"k", json.dumps(event(event_ts="2026-03-01T10:00:00.1Z")).encode(), "2026-03-01 10:00:00.100000+00:00"),
        ("microseconds", b"k", json.dumps(event(event_ts="2026-03-01T10:00:00.123456Z")).encode(), "2026-03-01 10:00:00.123456+00:00"),
        ("nanoseconds, cut", b"k", json.dumps(event(event_ts="2026-03-01T10:00:00.123456789Z")).encode(), "2026-03-01 10:00:00.123456+00:00"),
        ("an offset", b"k", json.dumps(event(event_ts="2026-03-01T04:30:00-05:30")).encode(), at),
        ("lower-case t and z", b"k", json.dumps(event(event_ts="2026-03-01t10:00:00z")).encode(), at),
        ("a space for the T", b"k", json.dumps(event(event_ts="2026-03-01 10:00:00Z")).encode(), at),
    ]
    refused = [("tombstone", b"k", None, "empty_value"), ("empty value", b"k", b"", "empty_value"),
               ("no offset", b"k", json.dumps(event(event_ts="2026-03-01T10:00:00")).encode(), "bad_timestamp")]
    from confluent_kafka import Producer

    create_topic(stack, topic)
    p = Producer({"bootstrap.servers": stack.bootstrap})
    cases = accepted + refused
    for _, key, value, _ in cases:
        p.produce(topic, value=value, key=key, partition=0)
    assert p.flush(30) == 0

    d = _core.drain(stack.kafka(topic), stack.lake(lake_prefix), DRAIN)
    assert (d["rows"], d["quarantined"]) == (len(accepted), len(refused))
    rows = {r["kafka_offset"]: r for r in committed_bronze(stack, lake_prefix, topic).to_pylist()}
    for offset, (name, _, _, ts) in enumerate(accepted):
        assert str(rows[offset]["event_ts"]) == ts, name
    assert rows[3]["song_name"] == "Caf\u00e9 \U0001F3B5"
    got = {r["kafka_offset"]: r["reason"] for r in quarantined(stack, lake_prefix, topic)}
    assert got == {len(accepted) + i: reason for i, (_, _, _, reason) in enumerate(refused)}


# 6 -------------------------------------------------------------------------------------------
def test_transactions_committed_aborted_and_open_are_drained_read_committed(stack, topic, lake_prefix):
    """Real transactional producers (confluent-kafka): a committed transaction is drained, an
    aborted one never is, an open one holds the drain at the last stable offset without a wait,
    and once it commits the next drain takes it and what followed it. Transaction markers take
    offsets that hold no record: the lake's txn still reaches the end, so lag is 0."""
    from confluent_kafka import Producer

    kafka, lake = stack.kafka(topic), stack.lake(lake_prefix)
    create_topic(stack, topic)
    events = [json.loads(e) for _, e in _core.simulate(SIM, 35)]
    ids = [e["event_id"] for e in events]
    payloads = [json.dumps(e).encode() for e in events]

    def transactional(name: str) -> Producer:
        p = Producer({"bootstrap.servers": stack.bootstrap, "transactional.id": f"{topic}-{name}"})
        p.init_transactions(30)
        p.begin_transaction()
        return p

    committed = transactional("committed")
    for v in payloads[:10]:
        committed.produce(topic, v, partition=0)
    committed.commit_transaction(30)
    aborted = transactional("aborted")
    for v in payloads[10:20]:
        aborted.produce(topic, v, partition=0)
    assert aborted.flush(30) == 0  # on the broker, then aborted
    aborted.abort_transaction(30)
    still_open = transactional("open")
    for v in payloads[20:30]:
        still_open.produce(topic, v, partition=0)
    assert still_open.flush(30) == 0
    produce_raw(stack, topic, payloads[30:])  # after the open transaction: not stable yet

    started = time.monotonic()
    first = _core.drain(kafka, lake, DRAIN)
    assert first["rows"] == 10 and time.monotonic() - started < 10  # no wait for the open transaction
    assert _core.lag(kafka, lake)["lag"] == 0

    still_open.commit_transaction(30)
    second = _core.drain(kafka, lake, DRAIN)
    assert second["rows"] == 15
    assert _core.lag(kafka, lake)["lag"] == 0 and _core.drain(kafka, lake, DRAIN)["rows"] == 0
    bronze = committed_bronze(stack, lake_prefix, topic)
    assert sorted(bronze.column("event_id").to_pylist()) == sorted(ids[:10] + ids[20:])  # never the aborted ones
    marks = watermarks(stack, topic)[0]
    assert first["partitions"][0]["next_offset"] < second["partitions"][0]["next_offset"] == marks[1]


# 11 ------------------------------------------------------------------------------------------
PRODUCE_SCRIPT = """
import json, sys
from spotify_pipeline import _core
try:
    _core.produce(json.loads(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3]))
except Exception as e:
    print(f"{type(e).__name__}: {e}", flush=True)
    sys.exit(3)
"""


def test_a_broker_outage_longer_than_the_delivery_timeout_fails_the_producer_and_a_rerun_reconciles(stack, topic, lake_prefix):
    """The broker stops mid-produce for longer than message.timeout.ms (4 s here, set through the
    connection's client config): the task fails saying how many events were not delivered. The
    broker comes back, the task is re-run with the same seed: bronze then holds every event, the
    ones delivered before the outage twice (at least once upstream; silver keeps one of each)."""
    stack_sh = str(ROOT / "scripts" / "stack.sh")
    kafka = {**stack.kafka(topic), "client": {"bootstrap.servers": stack.bootstrap, "message.timeout.ms": "4000"}}
    sim, n = {**SIM, "seed": 74}, 20_000
    _core.produce(kafka, sim, {"count": 0, "partitions": 2})  # the topic
    proc = subprocess.Popen([sys.executable, "-c", PRODUCE_SCRIPT, json.dumps(kafka), json.dumps(sim),
                             json.dumps({"count": n, "rate_per_s": 2_000})], stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(2)
        subprocess.run([stack_sh, "stop-kafka"], check=True, timeout=120)
        started = time.monotonic()
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 3 and "were not delivered" in out, out
        assert time.monotonic() - started < 60
    finally:
        proc.kill()
        subprocess.run([stack_sh, "start-kafka"], check=True, timeout=300)

    rerun = _core.produce(kafka, sim, {"count": n})
    assert rerun["events"] == n == sum(r["count"] for r in rerun["partitions"])
    for r in rerun["partitions"]:  # this run's own offsets: contiguous, after what the failed run delivered
        assert r["last_offset"] - r["first_offset"] + 1 == r["count"]
    _core.drain(kafka, stack.lake(lake_prefix), DRAIN)
    ids = committed_bronze(stack, lake_prefix, topic).column("event_id").to_pylist()
    expected = {json.loads(e)["event_id"] for k, e in _core.simulate(sim, n) if not k.startswith("malformed")}
    assert set(ids) == expected
    counts: dict[str, int] = {}
    for i in ids:
        counts[i] = counts.get(i, 0) + 1
    redelivered = [i for i, c in counts.items() if c > 1]
    assert redelivered and max(counts.values()) == 2 and len(ids) == n + len(redelivered)
    assert min(r["first_offset"] for r in rerun["partitions"]) > 0  # the failed run's records come first
