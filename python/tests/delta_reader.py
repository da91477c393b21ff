"""An independent reader of Delta Lake tables for the tests: plain json + pyarrow + boto3, no
delta-rs, no `deltalake`, no polars, no `spotify_pipeline._core`. It rebuilds a snapshot the way
the Delta protocol says (newest usable checkpoint, then the JSON commits after it, in version
order), so a bug in the writer's own reading of its log cannot hide itself."""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlparse

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

Action = dict[str, Any]

_COMMIT = re.compile(r"^(\d{20})\.json$")
_CHECKPOINT = re.compile(r"^(\d{20})\.checkpoint(?:\.(\d{10})\.(\d{10}))?\.parquet$")
_ACTIONS = ("protocol", "metaData", "add", "remove", "txn", "commitInfo", "domainMetadata")
_PRIMITIVES: dict[str, pa.DataType] = {
    "string": pa.string(), "binary": pa.binary(), "boolean": pa.bool_(),
    "byte": pa.int8(), "short": pa.int16(), "integer": pa.int32(), "long": pa.int64(),
    "float": pa.float32(), "double": pa.float64(), "date": pa.date32(),
    "timestamp": pa.timestamp("us", tz="UTC"), "timestamp_ntz": pa.timestamp("us"),
}
_INTEGRAL = {"byte", "short", "integer", "long"}


# --- storage: keys are relative to the store's root (the lake prefix) -------------------------

class Store(Protocol):
    def list(self, prefix: str) -> list[str]: ...
    def get(self, key: str) -> bytes: ...
    def exists(self, key: str) -> bool: ...


@dataclass(frozen=True)
class S3Store:
    """A lake on S3/MinIO: `root` is the lake prefix inside `bucket`."""

    client: Any
    bucket: str
    root: str = ""

    def _key(self, key: str) -> str:
        root = self.root.strip("/")
        return f"{root}/{key}" if root else key

    def list(self, prefix: str) -> list[str]:
        full, cut = self._key(prefix), len(self._key(""))
        keys: list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full):
            keys += [o["Key"][cut:] for o in page.get("Contents", [])]
        return sorted(keys)

    def get(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
            return True
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise


@dataclass(frozen=True)
class LocalStore:
    """A lake in a local directory."""

    root: Path

    def list(self, prefix: str) -> list[str]:
        base = self.root / prefix.rpartition("/")[0]
        if not base.is_dir():
            return []
        keys = (p.relative_to(self.root).as_posix() for p in base.rglob("*") if p.is_file())
        return sorted(k for k in keys if k.startswith(prefix))

    def get(self, key: str) -> bytes:
        return (self.root / key).read_bytes()

    def exists(self, key: str) -> bool:
        return (self.root / key).is_file()


def open_store(url: str, s3_client: Any = None) -> Store:
    """`s3://bucket/prefix` (needs a boto3 client) or `file:///abs/dir`."""
    u = urlparse(url)
    if u.scheme in ("s3", "s3a"):
        assert s3_client is not None, f"{url}: an S3 lake needs a boto3 client"
        return S3Store(s3_client, u.netloc, u.path.strip("/"))
    assert u.scheme in ("file", ""), f"{url}: unsupported lake URL"
    return LocalStore(Path(unquote(u.path)))


# --- the log -----------------------------------------------------------------------------------

@dataclass
class Snapshot:
    version: int
    protocol: Action = field(default_factory=dict)
    metadata: Action = field(default_factory=dict)
    files: dict[str, Action] = field(default_factory=dict)  # decoded path -> add action
    txns: dict[str, int] = field(default_factory=dict)  # appId -> version, latest wins
    removed: set[str] = field(default_factory=set)  # tombstones: removed, not re-added

    def apply(self, actions: list[Action]) -> None:
        """One commit. Removes go first: a version may remove and re-add the same path, and then
        the add is what stands (the order of actions inside a version means nothing)."""
        for a in sorted(actions, key=lambda a: "remove" not in a):
            if (r := a.get("remove")) is not None:
                path = unquote(r["path"])
                self.files.pop(path, None)
                self.removed.add(path)
            elif (add := a.get("add")) is not None:
                path = unquote(add["path"])
                self.files[path] = add
                self.removed.discard(path)
            elif (t := a.get("txn")) is not None:
                self.txns[t["appId"]] = t["version"]
            elif (p := a.get("protocol")) is not None:
                self.protocol = p
            elif (m := a.get("metaData")) is not None:
                self.metadata = m


def _log(table_root: str) -> str:
    return f"{table_root.strip('/')}/_delta_log/"


def _parse_commit(body: bytes) -> list[Action]:
    return [json.loads(line) for line in body.decode().splitlines() if line.strip()]


def _assert_contiguous(have: list[int], first: int, last: int, where: str) -> None:
    missing = sorted(set(range(first, last + 1)) - set(have))
    assert not missing, f"{where}: gap in the commit versions {first}..{last}: missing {missing}"


def _read_checkpoint(store: Store, keys: list[str]) -> list[Action]:
    """Each checkpoint row holds exactly one non-null action column; maps become dicts and null
    fields are dropped so an action reads the same as it would in a JSON commit."""
    actions: list[Action] = []
    for key in keys:
        for row in pq.read_table(io.BytesIO(store.get(key))).to_pylist(maps_as_pydicts="strict"):
            for name in _ACTIONS:
                if row.get(name) is not None:
                    actions.append({name: {k: v for k, v in row[name].items() if v is not None}})
    return actions


def _checkpoint_keys(log: str, names: set[str], version: int, parts: int | None) -> list[str] | None:
    """The files of the checkpoint at `version` (multi-part when `parts` says so), if all there."""
    multi = [f"{version:020d}.checkpoint.{i:010d}.{parts:010d}.parquet" for i in range(1, (parts or 0) + 1)]
    for want in (multi, [f"{version:020d}.checkpoint.parquet"]):
        if want and set(want) <= names:
            return [log + n for n in want]
    return None


def commits(store: Store, table_root: str) -> list[tuple[int, list[Action]]]:
    """Every JSON commit still in the log, in version order (asserted contiguous)."""
    log = _log(table_root)
    found = sorted((int(m[1]), log + m[0]) for k in store.list(log) if (m := _COMMIT.match(k[len(log):])))
    if found:
        _assert_contiguous([v for v, _ in found], found[0][0], found[-1][0], table_root)
    return [(v, _parse_commit(store.get(key))) for v, key in found]


def load_snapshot(store: Store, table_root: str, version: int | None = None) -> Snapshot | None:
    """The table's state at `version` (default: latest); None when there is no `_delta_log`."""
    log = _log(table_root)
    names = {k[len(log):] for k in store.list(log)}
    commit_versions = sorted(int(m[1]) for n in names if (m := _COMMIT.match(n)))
    ckpts: dict[int, int | None] = {}  # version -> parts (None: single file)
    for n in names:
        if m := _CHECKPOINT.match(n):
            ckpts[int(m[1])] = int(m[3]) if m[3] else ckpts.get(int(m[1]))
    if not commit_versions and not ckpts:
        return None
    latest = max(commit_versions + list(ckpts))
    target = latest if version is None else version
    assert 0 <= target <= latest, f"{table_root}: version {version} requested, latest is {latest}"

    base: tuple[int, list[str]] | None = None
    if "_last_checkpoint" in names:
        last = json.loads(store.get(log + "_last_checkpoint"))
        if last["version"] <= target:
            keys = _checkpoint_keys(log, names, last["version"], last.get("parts"))
            assert keys, f"{table_root}: _last_checkpoint names version {last['version']}, its files are missing"
            base = (last["version"], keys)
    if base is None:  # no hint, or it is past the version asked for: newest complete one before
        for v in sorted((v for v in ckpts if v <= target), reverse=True):
            if keys := _checkpoint_keys(log, names, v, ckpts[v]):
                base = (v, keys)
                break

    snap = Snapshot(version=target)
    start = 0
    if base is not None:
        snap.apply(_read_checkpoint(store, base[1]))
        start = base[0] + 1
    replay = [v for v in commit_versions if start <= v <= target]
    _assert_contiguous(replay, start, target, table_root)
    for v in replay:
        snap.apply(_parse_commit(store.get(f"{log}{v:020d}.json")))
    return snap


# --- the data ----------------------------------------------------------------------------------

def _arrow_type(t: str | dict[str, Any]) -> pa.DataType:
    if isinstance(t, str):
        if m := re.fullmatch(r"decimal\((\d+),\s*(\d+)\)", t):
            return pa.decimal128(int(m[1]), int(m[2]))
        return _PRIMITIVES[t]
    if t["type"] == "struct":
        return pa.struct([_arrow_field(f) for f in t["fields"]])
    if t["type"] == "array":
        return pa.list_(_arrow_type(t["elementType"]))
    assert t["type"] == "map", f"unknown Delta type {t}"
    return pa.map_(_arrow_type(t["keyType"]), _arrow_type(t["valueType"]))


def _arrow_field(f: dict[str, Any]) -> pa.Field:
    return pa.field(f["name"], _arrow_type(f["type"]), f.get("nullable", True))


def _partition_types(snap: Snapshot) -> dict[str, pa.DataType]:
    """Integral partition columns come back as ints, the rest (date included) as their string."""
    fields = {f["name"]: f["type"] for f in json.loads(snap.metadata.get("schemaString") or '{"fields": []}')["fields"]}
    return {c: _PRIMITIVES[fields[c]] if fields.get(c) in _INTEGRAL else pa.string()
            for c in snap.metadata.get("partitionColumns", [])}


def _empty(snap: Snapshot | None) -> pa.Table:
    if snap is None or not snap.metadata.get("schemaString"):
        return pa.table({"event_id": pa.array([], pa.string()), "kafka_partition": pa.array([], pa.int32()),
                         "kafka_offset": pa.array([], pa.int64()), "file_key": pa.array([], pa.string())})
    parts = _partition_types(snap)
    fields = [_arrow_field(f) for f in json.loads(snap.metadata["schemaString"])["fields"] if f["name"] not in parts]
    return pa.schema(fields + [pa.field(c, t) for c, t in parts.items()] + [pa.field("file_key", pa.string())]).empty_table()


def _num_records(add: Action) -> int | None:
    if add.get("stats"):
        return json.loads(add["stats"]).get("numRecords")
    return (add.get("stats_parsed") or {}).get("numRecords")  # checkpoints may carry stats parsed


def read_table(store: Store, table_root: str, snapshot: Snapshot | None = None,
               columns: list[str] | None = None, exclude: tuple[str, ...] = ()) -> pa.Table:
    """Every row of every active file, plus its partition values (from the log: they are not in
    the files) and `file_key`, the object key relative to the lake root. `columns` keeps only
    those; `exclude` leaves those file columns unread (the `raw` bytes are most of a 10 M-event
    table's memory)."""
    snap = snapshot or load_snapshot(store, table_root)
    if snap is not None and "delta.columnMapping.mode" in snap.metadata.get("configuration", {}):
        assert snap.metadata["configuration"]["delta.columnMapping.mode"] == "none", "column mapping is not supported"
    parts = _partition_types(snap) if snap else {}
    tables = []
    for path, add in sorted((snap.files if snap else {}).items()):
        assert add.get("deletionVector") is None, f"{path}: deletion vectors are not supported"
        assert not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", path), f"{path}: absolute paths are not supported"
        key = f"{table_root.strip('/')}/{path}"
        pf = pq.ParquetFile(io.BytesIO(store.get(key)))
        want = [c for c in pf.schema_arrow.names
                if c not in parts and c not in exclude and (columns is None or c in columns)]
        t = pf.read(columns=want)
        n = _num_records(add)
        assert n is None or t.num_rows == n, f"{key}: {t.num_rows} rows, the log's stats say {n}"
        values = add.get("partitionValues") or {}
        for c, typ in parts.items():
            v = values.get(c)
            v = None if v is None or (v == "" and typ != pa.string()) else int(v) if pa.types.is_integer(typ) else v
            t = t.append_column(c, pa.array([v] * t.num_rows, typ))
        tables.append(t.append_column("file_key", pa.array([key] * t.num_rows, pa.string())))
    if not tables:
        t = _empty(snap)
        t = t.drop_columns([c for c in exclude if c in t.column_names])
        return t.select([c for c in columns if c in t.column_names]) if columns else t
    t = pa.concat_tables(tables, promote_options="default")
    return t.select(columns) if columns else t


def where(t: pa.Table, column: str, value: Any) -> pa.Table:
    """Rows whose `column` equals `value` (an empty table stays itself if it lacks the column)."""
    return t.filter(pc.equal(t[column], value)) if column in t.column_names else t
