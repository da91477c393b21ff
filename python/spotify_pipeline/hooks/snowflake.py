"""The Snowflake warehouse: the same bronze table, quarantine table and load ledger as DuckDB,
loaded exactly once through the Airflow Snowflake provider's hook.

A chunk of prepared batches loads as: ``PUT`` its Parquet files to an internal stage under a
fresh load id, then in ONE transaction ``COPY INTO … MATCH_BY_COLUMN_NAME`` for events and
quarantine, a row-count check against the manifests, and the ledger rows; then the staged files
are removed. Snowflake's own load metadata would also skip a file loaded twice, but it lasts
64 days and knows nothing of batches: the ledger is what makes a re-run a no-op.

The connection is a normal ``snowflake`` connection (``apache-airflow-providers-snowflake``,
install ``spotify-pipeline[snowflake]``). The bronze Parquet files are rewritten by the Rust
core with a ``source_file`` column (``prepare_batches(..., source_file_column=True)``), since
``COPY`` matches columns by name.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from airflow.sdk import BaseHook

from spotify_pipeline import _core
from spotify_pipeline.hooks.bronze_tables import BronzeTables
from spotify_pipeline.hooks.duckdb import identifier

SNOWFLAKE_TYPES = {
    "string": "VARCHAR",
    "int32": "INTEGER",
    "int64": "BIGINT",
    "date": "DATE",
    # UTC wall-clock time, like the DuckDB table's TIMESTAMP.
    "timestamp_ms_utc": "TIMESTAMP_NTZ(3)",
}
# DuckDB's names for the Parquet types of the reference tables, as Snowflake types.
_REFERENCE_TYPES = {"VARCHAR": "VARCHAR", "BIGINT": "BIGINT", "INTEGER": "INTEGER", "DOUBLE": "DOUBLE", "BOOLEAN": "BOOLEAN", "DATE": "DATE"}
_LOCAL_PATH = re.compile(r"^[A-Za-z0-9_./=+-]+$")


@contextmanager
def _transaction(cur) -> Iterator[None]:
    cur.execute("BEGIN")
    try:
        yield
        cur.execute("COMMIT")
    except BaseException:
        cur.execute("ROLLBACK")
        raise


def _put(cur, local_path: str, stage_dir: str) -> None:
    # PUT takes no bind parameters; both parts are built here from checked names.
    if not _LOCAL_PATH.match(local_path):
        raise ValueError(f"refusing to PUT {local_path!r}: unexpected characters in the path")
    cur.execute(f"PUT 'file://{local_path}' @{stage_dir} AUTO_COMPRESS = FALSE OVERWRITE = TRUE")


class SnowflakeWarehouseHook(BaseHook, BronzeTables):
    """Loads prepared bronze batches into Snowflake. See the module documentation."""

    conn_name_attr = "snowflake_conn_id"
    default_conn_name = "snowflake_default"
    hook_name = "Snowflake warehouse (Spotify Pipeline)"

    def __init__(self, snowflake_conn_id: str = default_conn_name, schema: str = "bronze", table: str = "spotify_events", stage: str = "spotify_lake") -> None:
        super().__init__()
        self.snowflake_conn_id = snowflake_conn_id
        self.schema = identifier(schema)
        self.table = identifier(table)
        self.stage = f"{self.schema}.{identifier(stage)}"

    # Whether the core should add source_file to the bronze Parquet (COPY matches by name).
    needs_source_file_column = True

    def ref(self) -> dict[str, str]:
        """What a trigger needs to find this warehouse again."""
        return {"conn_type": "snowflake", "conn_id": self.snowflake_conn_id, "schema": self.schema, "table": self.table}

    def connect(self):
        from airflow.providers.snowflake.hooks.snowflake import SnowflakeHook

        return SnowflakeHook(snowflake_conn_id=self.snowflake_conn_id).get_conn()

    def ensure_tables(self, con) -> None:
        def columns(table: str) -> str:
            return ", ".join(f"{n} {SNOWFLAKE_TYPES[k]}{'' if nullable else ' NOT NULL'}" for n, k, nullable in _core.load_columns(table))

        cur = con.cursor()
        cur.execute(f"CREATE SCHEMA IF NOT EXISTS {self.schema}")
        cur.execute(f"CREATE TABLE IF NOT EXISTS {self.bronze_table} ({columns('events')})")
        cur.execute(f"CREATE TABLE IF NOT EXISTS {self.quarantine_table} ({columns('quarantine')})")
        cur.execute(
            f"""CREATE TABLE IF NOT EXISTS {self.ledger_table} (
              batch_id VARCHAR NOT NULL PRIMARY KEY,
              kafka_partition INTEGER NOT NULL,
              start_offset BIGINT NOT NULL,
              end_offset BIGINT NOT NULL,
              files VARCHAR NOT NULL,
              rows BIGINT NOT NULL,
              loaded_at TIMESTAMP_NTZ NOT NULL,
              quarantined BIGINT NOT NULL
            )"""
        )
        cur.execute(f"CREATE STAGE IF NOT EXISTS {self.stage} FILE_FORMAT = (TYPE = PARQUET)")

    def loaded_batch_ids(self, con) -> set[str]:
        cur = con.cursor()
        cur.execute(f"SELECT batch_id FROM {self.ledger_table}")
        return {r[0] for r in cur.fetchall()}

    def loaded_batch_ids_or_busy(self) -> set[str] | None:
        """The ledger's batch ids (Snowflake is never "busy" the way a DuckDB file is)."""
        with self.connect() as con:
            cur = con.cursor()
            cur.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s AND table_name = '_LOADS'",
                [self.schema.upper()],
            )
            return self.loaded_batch_ids(con) if cur.fetchone()[0] else set()

    def _count(self, cur, table: str) -> int:
        cur.execute(f"SELECT count(*) FROM {table}")
        return cur.fetchone()[0]

    def _stage_files(self, cur, load_dir: str, paths: list[str], kind: str, tmp: Path) -> None:
        """PUTs ``paths`` under ``@stage/<load_dir>/<kind>/``, renamed 0.parquet, 1.parquet, ...:
        bronze file names repeat across hour folders, and the rows carry their own source_file."""
        flat = tmp / load_dir / kind
        flat.mkdir(parents=True, exist_ok=True)
        for i, path in enumerate(paths):
            link = flat / f"{i}.parquet"
            link.hardlink_to(path)
            _put(cur, str(link), f"{self.stage}/{load_dir}/{kind}")

    def load_batches(self, con, batches: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Loads prepared batches and their ledger rows in one transaction: all or nothing.

        Batches the ledger already has are skipped. Returns (loaded, skipped).
        """
        cur = con.cursor()
        ids = [b["batch_id"] for b in batches]
        already = self._loaded_among(cur, ids)
        todo = [b for b in batches if b["batch_id"] not in already]
        skipped = [b for b in batches if b["batch_id"] in already]
        if not todo:
            return [], skipped
        load_dir = f"load_{uuid.uuid4().hex}"
        tmp = Path(todo[0]["local_paths"][0][: -len(todo[0]["files"][0])]) / "_snowflake"
        self._stage_files(cur, load_dir, [p for b in todo for p in b["local_paths"]], "events", tmp)
        quarantine = [p for b in todo for p in b["quarantine_local_paths"]]
        if quarantine:
            self._stage_files(cur, load_dir, quarantine, "quarantine", tmp)
        try:
            with _transaction(cur):
                self._load_in_transaction(cur, ids, already, todo, load_dir, bool(quarantine))
        finally:
            self._remove_staged(cur, load_dir)
        return todo, skipped

    def _load_in_transaction(self, cur, ids: list[str], already: set[str], todo: list[dict[str, Any]], load_dir: str, quarantine: bool) -> None:
        """COPY the staged files of ``todo`` into events and quarantine, check the counts, write
        the ledger rows: run inside one transaction."""
        # Another loader may have committed some of these batches since the check above.
        if self._loaded_among(cur, ids) != already:
            raise RuntimeError("another load committed some of these batches meanwhile; re-run to load the rest")
        for table, kind, expected in (
            (self.bronze_table, "events", sum(b["rows"] for b in todo)),
            (self.quarantine_table, "quarantine", sum(b["quarantined"] for b in todo)),
        ):
            if kind == "quarantine" and not quarantine:
                continue
            before = self._count(cur, table)
            cur.execute(
                f"COPY INTO {table} FROM @{self.stage}/{load_dir}/{kind}/ "
                "FILE_FORMAT = (TYPE = PARQUET) MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE ON_ERROR = ABORT_STATEMENT"
            )
            inserted = self._count(cur, table) - before
            if inserted != expected:
                raise RuntimeError(f"COPY INTO {table} loaded {inserted} rows; the manifests say {expected}")
        for b in todo:
            cur.execute(
                f"""INSERT INTO {self.ledger_table} (batch_id, kafka_partition, start_offset, end_offset, files, rows, quarantined, loaded_at)
                    VALUES (%s, %s, %s, %s, %s, %s, %s, SYSDATE())""",
                [b["batch_id"], b["partition"], b["start_offset"], b["end_offset"], ",".join(b["files"]), b["rows"], b["quarantined"]],
            )

    def _loaded_among(self, cur, ids: list[str]) -> set[str]:
        placeholders = ", ".join(["%s"] * len(ids))
        cur.execute(f"SELECT batch_id FROM {self.ledger_table} WHERE batch_id IN ({placeholders})", ids)
        return {r[0] for r in cur.fetchall()}

    def _remove_staged(self, cur, load_dir: str) -> None:
        try:
            cur.execute(f"REMOVE @{self.stage}/{load_dir}/")
        except Exception as e:  # the files are inert once the load committed or rolled back
            self.log.warning("could not remove staged files @%s/%s: %s", self.stage, load_dir, e)

    def replace_reference_tables(self, con, files: dict[str, list[str]], schema: str = "reference") -> dict[str, int]:
        """Replaces each reference table's rows with its Parquet files' rows, all tables in one
        transaction (DELETE + COPY: DDL would commit it early in Snowflake). The column types
        come from the files, read locally by DuckDB."""
        import duckdb

        schema = identifier(schema)
        cur = con.cursor()
        cur.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        load_dir = f"reference_{uuid.uuid4().hex}"
        for table, paths in sorted(files.items()):
            # One file per table, with the key's `catalog=<seed>-<songs>-<users>` as a column,
            # as DuckDB's hive_partitioning gives it (COPY cannot read it from the path).
            merged = Path(paths[0]).parent / f"_{identifier(table)}_with_catalog.parquet"
            with duckdb.connect() as local:
                local.execute(f"COPY (SELECT * FROM read_parquet(?, hive_partitioning = true)) TO '{merged}' (FORMAT parquet)", [paths])
                kinds = local.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(merged)]).fetchall()
            cols = ", ".join(f"{identifier(n)} {_reference_type(t)}" for n, t, *_ in kinds)
            cur.execute(f"CREATE TABLE IF NOT EXISTS {schema}.{identifier(table)} ({cols})")
            self._stage_files(cur, load_dir, [str(merged)], table, merged.parent / "_snowflake")
        counts = {}
        try:
            with _transaction(cur):
                for table in sorted(files):
                    name = f"{schema}.{table}"
                    cur.execute(f"DELETE FROM {name}")
                    cur.execute(f"COPY INTO {name} FROM @{self.stage}/{load_dir}/{table}/ FILE_FORMAT = (TYPE = PARQUET) MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE")
                    counts[table] = self._count(cur, name)
        finally:
            self._remove_staged(cur, load_dir)
        return counts


def _reference_type(duckdb_type: str) -> str:
    if duckdb_type.startswith("TIMESTAMP"):
        return "TIMESTAMP_NTZ(3)"
    return _REFERENCE_TYPES.get(duckdb_type, "VARCHAR")
