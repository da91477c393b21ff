"""The independent Delta reader on tables built by hand (JSON commits, pyarrow checkpoints and data
files), so what it must see is known exactly rather than taken from the writer under test."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from delta_reader import LocalStore, S3Store, commits, load_snapshot, open_store, read_table

ROOT = "bronze/spotify_events"
FIELDS = [("event_id", "string"), ("kafka_topic", "string"), ("kafka_partition", "integer"),
          ("kafka_offset", "long"), ("kafka_ts", "timestamp"), ("raw", "binary"), ("date", "date"), ("hour", "integer")]
SCHEMA = json.dumps({"type": "struct", "fields": [{"name": n, "type": t, "nullable": True, "metadata": {}} for n, t in FIELDS]})
PROTOCOL = {"protocol": {"minReaderVersion": 1, "minWriterVersion": 2}}
META = {"metaData": {"id": "t-1", "format": {"provider": "parquet", "options": {}}, "schemaString": SCHEMA,
                     "partitionColumns": ["date", "hour"], "configuration": {}, "createdTime": 1}}
MAP = pa.map_(pa.string(), pa.string())
CHECKPOINT = pa.schema([
    ("txn", pa.struct([("appId", pa.string()), ("version", pa.int64()), ("lastUpdated", pa.int64())])),
    ("add", pa.struct([("path", pa.string()), ("partitionValues", MAP), ("size", pa.int64()),
                       ("modificationTime", pa.int64()), ("dataChange", pa.bool_()), ("stats", pa.string()),
                       ("tags", MAP), ("deletionVector", pa.struct([("storageType", pa.string())]))])),
    ("remove", pa.struct([("path", pa.string()), ("deletionTimestamp", pa.int64()), ("dataChange", pa.bool_())])),
    ("metaData", pa.struct([("id", pa.string()), ("format", pa.struct([("provider", pa.string()), ("options", MAP)])),
                            ("schemaString", pa.string()), ("partitionColumns", pa.list_(pa.string())),
                            ("configuration", MAP), ("createdTime", pa.int64())])),
    ("protocol", pa.struct([("minReaderVersion", pa.int32()), ("minWriterVersion", pa.int32())])),
])


def data_file(lake: Path, name: str, offsets: range, date: str = "2026-01-15", hour: int = 7,
              partition: int = 0, stats_rows: int | None = None, encoded: str | None = None) -> dict[str, Any]:
    """Write a bronze-like data file (no partition columns in it) and return its add action."""
    rel = f"date={date}/hour={hour}/{name}"
    t = pa.table({"event_id": [f"e{o}" for o in offsets], "kafka_topic": ["t"] * len(offsets),
                  "kafka_partition": pa.array([partition] * len(offsets), pa.int32()),
                  "kafka_offset": pa.array(list(offsets), pa.int64())})
    (lake / ROOT / rel).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(t, lake / ROOT / rel)
    n = len(offsets) if stats_rows is None else stats_rows
    return {"add": {"path": encoded or rel, "partitionValues": {"date": date, "hour": str(hour)},
                    "size": (lake / ROOT / rel).stat().st_size, "modificationTime": 1, "dataChange": True,
                    "stats": json.dumps({"numRecords": n})}}


def compacted(add: dict[str, Any]) -> dict[str, Any]:
    return {"add": {**add["add"], "dataChange": False}}


def remove(add: dict[str, Any]) -> dict[str, Any]:
    return {"remove": {"path": add["add"]["path"], "deletionTimestamp": 2, "dataChange": False}}


def txn(app: str, version: int) -> dict[str, Any]:
    return {"txn": {"appId": app, "version": version, "lastUpdated": 1}}


def commit(lake: Path, version: int, actions: list[dict[str, Any]]) -> None:
    log = lake / ROOT / "_delta_log"
    log.mkdir(parents=True, exist_ok=True)
    info = {"commitInfo": {"operation": "WRITE", "timestamp": 1}}
    (log / f"{version:020d}.json").write_text("\n".join(json.dumps(a) for a in [*actions, info]) + "\n")


def checkpoint(lake: Path, version: int, actions: list[dict[str, Any]], parts: int | None = None) -> None:
    """A classic checkpoint (or a multi-part one): one action per row, maps as Arrow maps."""
    log = lake / ROOT / "_delta_log"
    rows = [{k: ({**v, "partitionValues": list(v["partitionValues"].items())} if k == "add" else v)
             for k, v in a.items()} for a in actions]
    if parts is None:
        pq.write_table(pa.Table.from_pylist(rows, CHECKPOINT), log / f"{version:020d}.checkpoint.parquet")
    else:
        for i in range(parts):
            chunk = rows[i::parts]
            pq.write_table(pa.Table.from_pylist(chunk, CHECKPOINT),
                           log / f"{version:020d}.checkpoint.{i + 1:010d}.{parts:010d}.parquet")
    (log / "_last_checkpoint").write_text(json.dumps({"version": version, "size": len(rows),
                                                      **({"parts": parts} if parts else {})}))


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def compacted_lake(lake: Path) -> tuple[Path, dict[str, Any]]:
    """v0: a, b; v1: c; v2: compaction of a, b, c into d (dataChange false)."""
    a, b = data_file(lake, "part-a.parquet", range(0, 3)), data_file(lake, "part-b.parquet", range(3, 5))
    c = data_file(lake, "part-c.parquet", range(5, 9), hour=8)
    d = data_file(lake, "part-d.parquet", range(0, 5))
    commit(lake, 0, [PROTOCOL, META, a, b, txn("t/0", 5)])
    commit(lake, 1, [c, txn("t/0", 9)])
    commit(lake, 2, [remove(a), remove(b), compacted(d)])
    return lake, {"a": a, "b": b, "c": c, "d": d}


def paths(*adds: dict[str, Any]) -> set[str]:
    return {x["add"]["path"] for x in adds}


def test_a_file_removed_by_compaction_is_not_active(compacted_lake):
    lake, f = compacted_lake
    snap = load_snapshot(LocalStore(lake), ROOT)
    assert snap.version == 2
    assert set(snap.files) == paths(f["c"], f["d"])
    assert snap.removed == paths(f["a"], f["b"])
    assert snap.files[f["d"]["add"]["path"]]["dataChange"] is False
    t = read_table(LocalStore(lake), ROOT)
    assert sorted(t["kafka_offset"].to_pylist()) == list(range(0, 9))
    assert [v for v, _ in commits(LocalStore(lake), ROOT)] == [0, 1, 2]
    last = commits(LocalStore(lake), ROOT)[-1][1]
    assert [a[k]["dataChange"] for a in last for k in ("add", "remove") if k in a] == [False] * 3


def test_an_earlier_version_still_sees_the_files_compaction_removed(compacted_lake):
    lake, f = compacted_lake
    snap = load_snapshot(LocalStore(lake), ROOT, version=1)
    assert (snap.version, set(snap.files), snap.removed) == (1, paths(f["a"], f["b"], f["c"]), set())
    assert read_table(LocalStore(lake), ROOT, snap).num_rows == 9


def test_a_path_removed_and_re_added_in_one_commit_stays_active(compacted_lake):
    lake, f = compacted_lake
    commit(lake, 3, [compacted(f["c"]), remove(f["c"])])  # order inside a version means nothing
    snap = load_snapshot(LocalStore(lake), ROOT)
    assert set(snap.files) == paths(f["c"], f["d"]) and f["c"]["add"]["path"] not in snap.removed


def test_the_latest_txn_per_app_id_wins(lake):
    commit(lake, 0, [PROTOCOL, META, txn("t/0", 5), txn("t/1", 3)])
    commit(lake, 1, [txn("t/0", 9)])
    commit(lake, 2, [txn("t/1", 2)])  # latest, not largest
    assert load_snapshot(LocalStore(lake), ROOT).txns == {"t/0": 9, "t/1": 2}
    assert load_snapshot(LocalStore(lake), ROOT, version=1).txns == {"t/0": 9, "t/1": 3}


def test_a_checkpoint_plus_later_commits_rebuilds_the_state(compacted_lake):
    lake, f = compacted_lake
    checkpoint(lake, 1, [PROTOCOL, META, txn("t/0", 9), f["a"], f["b"], f["c"]])
    for v in (0, 1):  # log cleanup: only the checkpoint can tell what v0 and v1 did
        (lake / ROOT / "_delta_log" / f"{v:020d}.json").unlink()
    commit(lake, 3, [txn("t/1", 4)])
    snap = load_snapshot(LocalStore(lake), ROOT)
    assert snap.version == 3 and set(snap.files) == paths(f["c"], f["d"])
    assert snap.txns == {"t/0": 9, "t/1": 4}
    assert snap.metadata["partitionColumns"] == ["date", "hour"] and snap.protocol["minWriterVersion"] == 2
    assert snap.files[f["c"]["add"]["path"]]["partitionValues"] == {"date": "2026-01-15", "hour": "8"}
    assert "deletionVector" not in snap.files[f["c"]["add"]["path"]]  # checkpoint nulls are dropped
    assert sorted(read_table(LocalStore(lake), ROOT)["kafka_offset"].to_pylist()) == list(range(9))


def test_a_checkpoint_newer_than_the_version_asked_for_is_not_used(compacted_lake):
    lake, f = compacted_lake
    checkpoint(lake, 2, [PROTOCOL, META, txn("t/0", 9), f["c"], f["d"]])
    assert set(load_snapshot(LocalStore(lake), ROOT, version=0).files) == paths(f["a"], f["b"])


def test_a_multi_part_checkpoint_is_read_whole(compacted_lake):
    lake, f = compacted_lake
    checkpoint(lake, 2, [PROTOCOL, META, txn("t/0", 9), f["c"], f["d"], remove(f["a"]), remove(f["b"])], parts=3)
    for v in (0, 1, 2):
        (lake / ROOT / "_delta_log" / f"{v:020d}.json").unlink()
    snap = load_snapshot(LocalStore(lake), ROOT)
    assert (snap.version, set(snap.files), snap.removed) == (2, paths(f["c"], f["d"]), paths(f["a"], f["b"]))
    assert snap.txns == {"t/0": 9}


def test_a_gap_in_commit_versions_raises(compacted_lake):
    lake, _ = compacted_lake
    (lake / ROOT / "_delta_log" / f"{1:020d}.json").unlink()
    with pytest.raises(AssertionError, match=r"missing \[1\]"):
        load_snapshot(LocalStore(lake), ROOT)
    with pytest.raises(AssertionError, match=r"missing \[1\]"):
        commits(LocalStore(lake), ROOT)


def test_a_log_that_does_not_start_at_zero_without_a_checkpoint_raises(compacted_lake):
    lake, _ = compacted_lake
    (lake / ROOT / "_delta_log" / f"{0:020d}.json").unlink()
    with pytest.raises(AssertionError, match=r"missing \[0\]"):
        load_snapshot(LocalStore(lake), ROOT)


def test_a_row_count_that_disagrees_with_stats_raises(lake):
    commit(lake, 0, [PROTOCOL, META, data_file(lake, "part-x.parquet", range(3), stats_rows=4)])
    with pytest.raises(AssertionError, match=r"part-x\.parquet: 3 rows, the log's stats say 4"):
        read_table(LocalStore(lake), ROOT)


def test_partition_columns_come_from_the_log_not_the_files(compacted_lake):
    lake, _ = compacted_lake
    t = read_table(LocalStore(lake), ROOT).sort_by("kafka_offset")
    assert (t.schema.field("date").type, t.schema.field("hour").type) == (pa.string(), pa.int32())
    rows = {(r["kafka_offset"], r["date"], r["hour"], r["file_key"]) for r in t.to_pylist()}
    assert (0, "2026-01-15", 7, "bronze/spotify_events/date=2026-01-15/hour=7/part-d.parquet") in rows
    assert (8, "2026-01-15", 8, "bronze/spotify_events/date=2026-01-15/hour=8/part-c.parquet") in rows
    assert t.num_rows == 9
    assert read_table(LocalStore(lake), ROOT, columns=["kafka_offset", "hour"]).column_names == ["kafka_offset", "hour"]


def test_a_url_encoded_path_is_decoded(lake):
    add = data_file(lake, "part one.parquet", range(2), encoded="date=2026-01-15/hour=7/part%20one.parquet")
    commit(lake, 0, [PROTOCOL, META, add])
    snap = load_snapshot(LocalStore(lake), ROOT)
    assert list(snap.files) == ["date=2026-01-15/hour=7/part one.parquet"]
    assert read_table(LocalStore(lake), ROOT)["file_key"].to_pylist() == [f"{ROOT}/date=2026-01-15/hour=7/part one.parquet"] * 2


def test_a_table_without_files_still_has_its_columns(lake):
    commit(lake, 0, [PROTOCOL, META])
    t = read_table(LocalStore(lake), ROOT)
    assert t.num_rows == 0
    assert t.column_names == ["event_id", "kafka_topic", "kafka_partition", "kafka_offset", "kafka_ts", "raw",
                              "date", "hour", "file_key"]
    assert t.schema.field("kafka_ts").type == pa.timestamp("us", tz="UTC")
    assert t.schema.field("kafka_partition").type == pa.int32()


def test_a_directory_without_a_delta_log_has_no_snapshot_and_reads_empty(lake):
    assert load_snapshot(LocalStore(lake), ROOT) is None
    t = read_table(open_store(f"file://{lake}"), ROOT)
    assert t.num_rows == 0 and {"event_id", "kafka_partition", "kafka_offset"} <= set(t.column_names)


class FakeS3:
    """Just the boto3 calls S3Store makes, over a dict, paginated by two to exercise paging."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects

    def get_paginator(self, _name: str) -> FakeS3:
        return self

    def paginate(self, Bucket: str, Prefix: str):  # noqa: N803 (boto3's names)
        keys = sorted(k for k in self.objects if k.startswith(Prefix))
        for i in range(0, max(len(keys), 1), 2):
            yield {"Contents": [{"Key": k} for k in keys[i:i + 2]]} if keys else {}

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:  # noqa: N803
        return {"Body": io.BytesIO(self.objects[Key])}


def test_an_s3_lake_reads_the_same_as_a_local_one(compacted_lake):
    lake, _ = compacted_lake
    objects = {f"tests/p1/{p.relative_to(lake).as_posix()}": p.read_bytes() for p in lake.rglob("*") if p.is_file()}
    s3 = open_store("s3://lake/tests/p1", FakeS3(objects))
    assert isinstance(s3, S3Store) and s3.root == "tests/p1"
    local, remote = read_table(LocalStore(lake), ROOT), read_table(s3, ROOT)
    assert remote.sort_by("kafka_offset").equals(local.sort_by("kafka_offset"))
    assert load_snapshot(s3, ROOT).version == 2
