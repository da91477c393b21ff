"""Lake maintenance on the real stack: OPTIMIZE bin-packs the drain's small files without changing
a row, VACUUM deletes only what no version needs, and other Delta readers (deltalake, polars)
read what the independent reader reads. Every check goes through the independent reader
(delta_reader: boto3 + pyarrow, not our core)."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from typing import Any

import pyarrow as pa
import pytest

from delta_reader import S3Store, Snapshot, load_snapshot
from reconcile import bronze_commits, committed_bronze, duplicates, list_keys, quarantined, txn_versions
from spotify_pipeline import _core

pytestmark = pytest.mark.integration

SIM = {"seed": 31, "start_ms": 1_772_323_200_000, "users": 2_000, "songs": 2_000, "faults": {"malformed_rate": 0.002}}
# Small batches: one small file per batch and Kafka partition, as a busy drain leaves them.
DRAIN = {"group_id": "maintenance-tests", "dataset": "spotify_events", "batch_max_records": 2_000, "idle_timeout_s": 30}
TARGET = 4 << 20
# -7200: the hour the records arrived in (the current one) counts as closed.
COMPACT = {"dataset": "spotify_events", "target_file_bytes": TARGET, "closed_after_s": -7200}
UNGUARDED = {"dataset": "spotify_events", "retention_hours": 0, "enforce_retention_guard": False}
TABLES = {False: "bronze/spotify_events", True: "bronze/spotify_events_quarantine"}


def produce_and_drain(stack, topic, lake_prefix, n: int, seed: int) -> dict[str, Any]:
    _core.produce(stack.kafka(topic), {**SIM, "seed": seed}, {"count": n})
    drained = _core.drain(stack.kafka(topic), stack.lake(lake_prefix), DRAIN)
    assert drained["rows"] + drained["quarantined"] == n
    assert drained["quarantined"] > 0, "the quarantine table should get files to maintain too"
    return drained


def snapshot(stack, lake_prefix, quarantine: bool) -> Snapshot:
    snap = load_snapshot(S3Store(stack.s3(), stack.bucket, lake_prefix), TABLES[quarantine])
    assert snap is not None, f"no Delta table at {TABLES[quarantine]}"
    return snap


def rows(stack, lake_prefix, topic, quarantine: bool) -> pa.Table:
    """Every row of the table (all columns but the file key), in Kafka order."""
    t = pa.Table.from_pylist(quarantined(stack, lake_prefix, topic)) if quarantine else committed_bronze(stack, lake_prefix, topic)
    return t.drop_columns(["file_key"]).sort_by([("kafka_partition", "ascending"), ("kafka_offset", "ascending")])


def coords(t: pa.Table) -> list[tuple[int, int]]:
    return list(zip(t.column("kafka_partition").to_pylist(), t.column("kafka_offset").to_pylist()))


def by_hour(snap: Snapshot) -> dict[tuple[str, str], list[int]]:
    """(date, hour) -> sizes of the partition's active files."""
    hours: dict[tuple[str, str], list[int]] = defaultdict(list)
    for add in snap.files.values():
        hours[(add["partitionValues"]["date"], add["partitionValues"]["hour"])].append(add["size"])
    return dict(hours)


def num_records(adds: list[dict[str, Any]]) -> int:
    return sum(json.loads(a["stats"])["numRecords"] for a in adds)


def data_files_on_disk(stack, lake_prefix, quarantine: bool) -> set[str]:
    """The table's objects in MinIO outside its log, relative to the table root."""
    root = f"{lake_prefix}/{TABLES[quarantine]}/"
    return {k.removeprefix(root) for k in list_keys(stack.s3(), stack.bucket, root) if not k.startswith(f"{root}_delta_log/")}


def test_compaction_bin_packs_each_closed_hour_and_changes_no_row(stack, topic, lake_prefix):
    produce_and_drain(stack, topic, lake_prefix, 300_000, seed=31)
    before = {q: snapshot(stack, lake_prefix, q) for q in TABLES}
    rows_before = {q: rows(stack, lake_prefix, topic, q) for q in TABLES}
    txns_before = {q: txn_versions(stack, lake_prefix, quarantine=q) for q in TABLES}
    assert len(before[False].files) >= 100, "the drain should have left many small files"

    started = time.monotonic()
    summaries = _core.compact(stack.lake(lake_prefix), COMPACT)
    seconds = time.monotonic() - started
    lake_url = f"s3://{stack.bucket}/{lake_prefix}"
    assert [s["table"] for s in summaries] == [f"{lake_url}/{TABLES[False]}", f"{lake_url}/{TABLES[True]}"]

    for q, s in zip(TABLES, summaries):
        b, a = before[q], snapshot(stack, lake_prefix, q)
        removed, added = set(b.files) - set(a.files), set(a.files) - set(b.files)
        # The summary says what the log says.
        assert (s["files_removed"], s["files_added"]) == (len(removed), len(added)), s
        assert s["bytes_removed"] == sum(b.files[p]["size"] for p in removed)
        assert s["bytes_added"] == sum(a.files[p]["size"] for p in added)
        assert s["rows"] == num_records([b.files[p] for p in removed]) == num_records([a.files[p] for p in added])
        assert (s["version"], s["warnings"]) == (a.version, [])
        small_hours = [h for h, sizes in by_hour(b).items() if sum(size < TARGET for size in sizes) >= 2]
        assert s["partitions_compacted"] == len(small_hours) >= 1

        # Same rows, same content, same hour partitions; none twice.
        after_rows = rows(stack, lake_prefix, topic, q)
        assert duplicates(coords(after_rows)) == {}
        assert after_rows.num_rows == rows_before[q].num_rows
        assert set(coords(after_rows)) == set(coords(rows_before[q]))
        assert after_rows.equals(rows_before[q]), "a compacted row differs from the row it replaced"
        # The drain's exactly-once bookkeeping is untouched.
        assert txn_versions(stack, lake_prefix, quarantine=q) == txns_before[q] != {}

        # Each hour: one file, or files of at least half the target.
        for hour, sizes in by_hour(a).items():
            assert len(sizes) == 1 or min(sizes) >= TARGET // 2, (hour, sorted(sizes))

        # One OPTIMIZE commit per compacted hour, every file action dataChange false, no txn.
        new = [acts for v, acts in bronze_commits(stack, lake_prefix, quarantine=q) if v > b.version]
        assert len(new) == s["partitions_compacted"]
        for acts in new:
            assert [x["commitInfo"]["operation"] for x in acts if "commitInfo" in x] == ["OPTIMIZE"]
            files = [x.get("add") or x["remove"] for x in acts if "add" in x or "remove" in x]
            assert files and all(f["dataChange"] is False for f in files)
            assert not any("txn" in x for x in acts)
        assert {x["remove"]["path"] for acts in new for x in acts if "remove" in x} == removed
        assert {x["add"]["path"] for acts in new for x in acts if "add" in x} == added

        # Far fewer files to list and scan.
        assert len(a.files) * 10 <= len(b.files), (len(b.files), len(a.files))
        print(f"\n{TABLES[q]}: {len(b.files)} -> {len(a.files)} files, {s['bytes_removed'] / 1e6:.1f} -> "
              f"{s['bytes_added'] / 1e6:.1f} MB, sizes {sorted(by_hour(a).values())}, {s['rows']:,} rows, "
              f"{s['elapsed_s']:.2f}s (compact call {seconds:.2f}s)")

    # Nothing left to do: a second run changes nothing.
    versions = {q: snapshot(stack, lake_prefix, q).version for q in TABLES}
    again = _core.compact(stack.lake(lake_prefix), COMPACT)
    assert [(s["files_removed"], s["files_added"], s["partitions_compacted"], s["version"]) for s in again] == [(0, 0, 0, -1)] * 2
    assert {q: snapshot(stack, lake_prefix, q).version for q in TABLES} == versions


def test_vacuum_deletes_what_compaction_removed_and_the_table_still_reads(stack, topic, lake_prefix):
    lake = stack.lake(lake_prefix)
    produce_and_drain(stack, topic, lake_prefix, 100_000, seed=32)
    before = {q: snapshot(stack, lake_prefix, q) for q in TABLES}
    rows_before = {q: rows(stack, lake_prefix, topic, q) for q in TABLES}
    _core.compact(lake, COMPACT)
    after = {q: snapshot(stack, lake_prefix, q) for q in TABLES}
    removed = {q: set(before[q].files) - set(after[q].files) for q in TABLES}
    assert all(removed.values()), "the compaction should have removed files in both tables"
    everything = {q: set(before[q].files) | set(after[q].files) for q in TABLES}
    assert {q: data_files_on_disk(stack, lake_prefix, q) for q in TABLES} == everything

    # The guard: under 1 h is refused unless turned off, and nothing is deleted.
    for options in ({"retention_hours": 0}, {"retention_hours": 0, "enforce_retention_guard": True}):
        with pytest.raises(_core.ConfigError, match="retention_hours 0 is below the guard"):
            _core.vacuum(lake, options)
    # The default retention (a week) keeps the files compaction just removed.
    assert [s["files_deleted"] for s in _core.vacuum(lake, {})] == [0, 0]
    # A dry run lists them and deletes nothing.
    dry = _core.vacuum(lake, {**UNGUARDED, "dry_run": True})
    for q, s in zip(TABLES, dry):
        assert (s["dry_run"], s["files_deleted"]) == (True, len(removed[q]))
        assert set(s["deleted"]) <= removed[q] and len(s["deleted"]) == min(50, len(removed[q]))
    assert {q: data_files_on_disk(stack, lake_prefix, q) for q in TABLES} == everything

    done = _core.vacuum(lake, UNGUARDED)
    for q, s in zip(TABLES, done):
        assert (s["dry_run"], s["files_deleted"]) == (False, len(removed[q]))
        assert set(s["deleted"]) <= removed[q] and len(s["deleted"]) == min(50, len(removed[q]))
        # The removed files are gone; every active file (of this table, and of the other one
        # whose root shares this one's prefix) is still there.
        assert data_files_on_disk(stack, lake_prefix, q) == set(after[q].files)
        assert set(snapshot(stack, lake_prefix, q).files) == set(after[q].files)
        assert rows(stack, lake_prefix, topic, q).equals(rows_before[q])
    # Again: nothing more goes. (Its files_deleted counts the expired tombstones again, though
    # their files are gone: delta-rs reports what it asked the store to delete.)
    _core.vacuum(lake, UNGUARDED)
    assert {q: data_files_on_disk(stack, lake_prefix, q) for q in TABLES} == {q: set(after[q].files) for q in TABLES}


def test_the_bronze_table_reads_the_same_in_deltalake_and_polars(stack, topic, lake_prefix):
    import deltalake
    import polars as pl

    # Compacted files and small ones after them, in the same hour: readers must apply the removes.
    produce_and_drain(stack, topic, lake_prefix, 60_000, seed=33)
    assert _core.compact(stack.lake(lake_prefix), COMPACT)[0]["files_removed"] > 0
    produce_and_drain(stack, topic, lake_prefix, 20_000, seed=34)

    uri = f"s3://{stack.bucket}/{lake_prefix}/{TABLES[False]}"
    storage = {
        "AWS_ENDPOINT_URL": stack.s3_endpoint, "AWS_ACCESS_KEY_ID": stack.access_key,
        "AWS_SECRET_ACCESS_KEY": stack.secret_key, "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true",
    }
    snap = snapshot(stack, lake_prefix, False)
    expected = sorted(committed_bronze(stack, lake_prefix, topic).column("event_id").to_pylist())
    assert len(expected) == 80_000 - len(quarantined(stack, lake_prefix, topic))

    dt = deltalake.DeltaTable(uri, storage_options=storage)
    assert dt.version() == snap.version
    assert {u.removeprefix(f"{uri}/") for u in dt.file_uris()} == set(snap.files)
    in_deltalake = dt.to_pyarrow_table(columns=["event_id"]).column("event_id").to_pylist()
    assert sorted(in_deltalake) == expected
    in_polars = pl.read_delta(uri, storage_options=storage, columns=["event_id"])["event_id"].to_list()
    assert sorted(in_polars) == expected

    q_expected = sorted((r["kafka_partition"], r["kafka_offset"], r["reason"]) for r in quarantined(stack, lake_prefix, topic))
    assert q_expected
    q = pl.scan_delta(f"{uri}_quarantine", storage_options=storage).select("kafka_partition", "kafka_offset", "reason").collect()
    assert sorted(q.iter_rows()) == q_expected


def test_the_maintenance_operators_log_and_return_their_summaries(stack, topic, lake_prefix, monkeypatch):
    from structlog.testing import capture_logs

    from spotify_pipeline.operators import LakeCompactOperator, LakeVacuumOperator

    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps({
        "conn_type": "aws", "login": stack.access_key, "password": stack.secret_key,
        "extra": {"endpoint_url": stack.s3_endpoint},
    }))
    produce_and_drain(stack, topic, lake_prefix, 40_000, seed=35)
    lake_url = f"s3://{stack.bucket}/{lake_prefix}"
    before = {q: snapshot(stack, lake_prefix, q) for q in TABLES}

    compact = LakeCompactOperator(task_id="compact", lake_url=lake_url, target_file_bytes=1 << 20, closed_after_s=-7200)
    with capture_logs() as logs:
        xcom = compact.execute(context={})
    lines = [e["event"] for e in logs]
    assert json.loads(json.dumps(xcom)) == xcom, "the XCom must be JSON"
    after = {q: snapshot(stack, lake_prefix, q) for q in TABLES}
    removed = {q: set(before[q].files) - set(after[q].files) for q in TABLES}
    added = {q: set(after[q].files) - set(before[q].files) for q in TABLES}
    assert [t["table"] for t in xcom["tables"]] == [f"{lake_url}/{TABLES[q]}" for q in TABLES]
    assert [(t["files_removed"], t["files_added"]) for t in xcom["tables"]] == [(len(removed[q]), len(added[q])) for q in TABLES]
    assert xcom["files_removed"] == sum(map(len, removed.values())) > 0
    assert xcom["files_added"] == sum(map(len, added.values())) > 0
    assert xcom["bytes_removed"] == sum(before[q].files[p]["size"] for q in TABLES for p in removed[q])
    assert xcom["bytes_added"] == sum(after[q].files[p]["size"] for q in TABLES for p in added[q])
    assert xcom["elapsed_s"] == pytest.approx(sum(t["elapsed_s"] for t in xcom["tables"])) and xcom["elapsed_s"] > 0
    for q, t in zip(TABLES, xcom["tables"]):
        head = f"{lake_url}/{TABLES[q]}: {t['partitions_compacted']} hour partitions compacted, {len(removed[q])} files -> {len(added[q])} "
        assert [line for line in lines if line.startswith(head)], (head, lines)
    assert any(line.startswith("compact: ") for line in lines), "no progress line"

    # Within the retention (1 h, the least it allows) nothing goes: the removed files stay.
    vacuum = LakeVacuumOperator(task_id="vacuum", lake_url=lake_url, retention_hours="1")
    with capture_logs() as logs:
        xv = vacuum.execute(context={})
    assert json.loads(json.dumps(xv)) == xv
    assert [(t["table"], t["files_deleted"], t["dry_run"]) for t in xv["tables"]] == [(f"{lake_url}/{TABLES[q]}", 0, False) for q in TABLES]
    assert xv["files_deleted"] == 0
    for q in TABLES:
        assert data_files_on_disk(stack, lake_prefix, q) == set(before[q].files) | set(after[q].files)
    lines = [e["event"] for e in logs]
    for q in TABLES:
        assert [line for line in lines if line.startswith(f"{lake_url}/{TABLES[q]}: deleted 0 files in ")], lines

    dry = LakeVacuumOperator(task_id="vacuum", lake_url=lake_url, retention_hours=1, dry_run="True").execute(context={})
    assert [t["dry_run"] for t in dry["tables"]] == [True, True]
    # The guard stays on: the operator neither goes under 1 h nor lets it be turned off.
    with pytest.raises(_core.ConfigError, match="below the guard"):
        LakeVacuumOperator(task_id="vacuum", lake_url=lake_url, retention_hours=0).execute(context={})
    with pytest.raises(TypeError, match="enforce_retention_guard"):
        LakeVacuumOperator(task_id="vacuum", lake_url=lake_url, retention_hours=0, enforce_retention_guard=False)


def test_compaction_beside_running_drains_then_stages_load_every_offset_once(stack, topic, lake_prefix, tmp_path, monkeypatch):
    """OPTIMIZE while a drain commits (no conflict: it changes no data, the drain only appends),
    then stages around it and a VACUUM: the warehouse has every (partition, offset) once, and
    the stage after the compaction loads nothing of what compaction rewrote."""
    import subprocess
    import sys

    import duckdb

    from spotify_pipeline.operators.stage import StageToWarehouseOperator

    monkeypatch.setenv("AIRFLOW_CONN_LAKE_MAINT", json.dumps({
        "conn_type": "aws", "login": stack.access_key, "password": stack.secret_key, "extra": {"endpoint_url": stack.s3_endpoint},
    }))
    monkeypatch.setenv("AIRFLOW_CONN_DUCKDB_MAINT", json.dumps({"conn_type": "duckdb", "extra": {"path": str(tmp_path / "wh.duckdb")}}))

    def stage() -> dict[str, Any]:
        return StageToWarehouseOperator(task_id="stage", lake_url=stack.lake(lake_prefix)["url"], lake_conn_id="lake_maint",
                                        warehouse_conn_id="duckdb_maint", load_reference=False).execute(context={})

    first = produce_and_drain(stack, topic, lake_prefix, 100_000, seed=41)
    assert stage()["rows"] == first["rows"]
    # A drain of a larger backlog, in small commits, with OPTIMIZE running beside it.
    _core.produce(stack.kafka(topic), {**SIM, "seed": 42}, {"count": 600_000})
    script = "import json, sys\nfrom spotify_pipeline import _core\nprint(json.dumps({'rows': _core.drain(*(json.loads(a) for a in sys.argv[1:4]))['rows']}))\n"
    drain = subprocess.Popen([sys.executable, "-c", script, json.dumps(stack.kafka(topic)), json.dumps(stack.lake(lake_prefix)),
                              json.dumps({**DRAIN, "commit_interval_ms": 50})], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    compactions = 0
    while drain.poll() is None:
        compactions += _core.compact(stack.lake(lake_prefix), COMPACT)[0]["files_removed"] > 0
    out, err = drain.communicate()
    assert drain.returncode == 0, err.decode()[-2000:]
    assert compactions >= 1, "OPTIMIZE should have rewritten files while the drain ran"
    assert json.loads(out)["rows"] > 0
    second = stage()
    _core.compact(stack.lake(lake_prefix), COMPACT)
    third = stage()
    assert third["files"] == 0 and third["rows"] == 0, "compaction commits add nothing to load"
    _core.vacuum(stack.lake(lake_prefix), UNGUARDED)
    assert stage()["rows"] == 0

    lake = coords(rows(stack, lake_prefix, topic, False)) + coords(rows(stack, lake_prefix, topic, True))
    with duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True) as con:
        wh = con.execute("select kafka_partition, kafka_offset from bronze.spotify_events").fetchall()
        wh += con.execute("select kafka_partition, kafka_offset from bronze.spotify_events_quarantine").fetchall()
    assert duplicates(wh) == {} and sorted(wh) == sorted(lake) and len(wh) == 700_000
    assert second["rows"] + first["rows"] == len(committed_bronze(stack, lake_prefix, topic))
