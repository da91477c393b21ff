"""The DuckDB warehouse: bronze table, load ledger, and exactly-once batch loads.

Connection type ``duckdb``: the database file's path is the extra's ``path`` (or the host),
for example ``{"conn_type": "duckdb", "extra": {"path": "/data/spotify.duckdb"}}``.

DuckDB allows one writing process per file, so every task that writes it runs in the one-slot
pool ``spotify_duckdb`` (see ``dags/spotify_pipeline.py``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from airflow.sdk import BaseHook

from spotify_pipeline import _core
from spotify_pipeline.hooks.bronze_tables import BronzeTables

DUCKDB_TYPES = {
    "string": "VARCHAR",
    "int32": "INTEGER",
    "int64": "BIGINT",
    "date": "DATE",
    # Stored as UTC wall-clock time (TIMESTAMP, like Snowflake's TIMESTAMP_NTZ).
    "timestamp_ms_utc": "TIMESTAMP",
}

# Every task that writes the DuckDB file runs in this one-slot pool: DuckDB allows one writer.
DUCKDB_POOL = "spotify_duckdb"

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


def identifier(name: str) -> str:
    """Returns ``name`` if it is a plain SQL identifier; refuses anything else."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"{name!r} is not a valid schema or table name (letters, digits, _)")
    return name


class DuckDBWarehouseHook(BaseHook, BronzeTables):
    conn_name_attr = "duckdb_conn_id"
    default_conn_name = "duckdb_default"
    conn_type = "duckdb"
    hook_name = "DuckDB (Spotify Pipeline)"

    # DuckDB derives each row's source_file from the file path: no Parquet rewrite needed.
    needs_source_file_column = False

    def __init__(
        self, duckdb_conn_id: str = default_conn_name, schema: str = "bronze", table: str = "spotify_events", path: str | None = None
    ) -> None:
        super().__init__()
        self.duckdb_conn_id = duckdb_conn_id
        self.schema = identifier(schema)
        self.table = identifier(table)
        self._path = path

    def ref(self) -> dict[str, str]:
        """What a trigger needs to find this warehouse again, without a connection lookup."""
        return {"conn_type": "duckdb", "path": self.path, "schema": self.schema, "table": self.table}

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": ["schema", "login", "password", "port"],
            "relabeling": {"host": "Database file path"},
            "placeholders": {"host": "/data/spotify.duckdb"},
        }

    @property
    def path(self) -> str:
        if self._path:
            return self._path
        conn = self.get_connection(self.duckdb_conn_id)
        path = conn.extra_dejson.get("path") or conn.host
        if not path:
            raise ValueError(f"DuckDB connection {self.duckdb_conn_id!r} has no path (extra.path or host)")
        self._path = str(path)
        return self._path

    def connect(self, read_only: bool = False):
        import duckdb

        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        return duckdb.connect(self.path, read_only=read_only)

    def loaded_batch_ids_or_busy(self) -> set[str] | None:
        """The ledger's batch ids, read-only, or None while another process writes the file."""
        import duckdb

        if not Path(self.path).exists():
            return set()
        try:
            with duckdb.connect(self.path, read_only=True) as con:
                exists = con.execute(
                    "select count(*) from information_schema.tables where table_schema = ? and table_name = '_loads'", [self.schema]
                ).fetchone()[0]
                return self.loaded_batch_ids(con) if exists else set()
        except duckdb.IOException as e:
            if "lock" in str(e).lower():
                return None
            raise

    def ensure_tables(self, con) -> None:
        def columns(table: str) -> str:
            return ",\n  ".join(
                f"{name} {DUCKDB_TYPES[kind]}{'' if nullable else ' NOT NULL'}" for name, kind, nullable in _core.load_columns(table)
            )

        con.execute(f"CREATE SCHEMA IF NOT EXISTS {self.schema}")
        con.execute(f"CREATE TABLE IF NOT EXISTS {self.bronze_table} (\n  {columns('events')}\n)")
        con.execute(f"CREATE TABLE IF NOT EXISTS {self.quarantine_table} (\n  {columns('quarantine')}\n)")
        con.execute(
            f"""CREATE TABLE IF NOT EXISTS {self.ledger_table} (
              batch_id VARCHAR PRIMARY KEY,
              kafka_partition INTEGER NOT NULL,
              start_offset BIGINT NOT NULL,
              end_offset BIGINT NOT NULL,
              files VARCHAR[] NOT NULL,
              rows BIGINT NOT NULL,
              loaded_at TIMESTAMP NOT NULL,
              quarantined BIGINT NOT NULL DEFAULT 0
            )"""
        )
        # Ledgers written before quarantine was loaded.
        con.execute(f"ALTER TABLE {self.ledger_table} ADD COLUMN IF NOT EXISTS quarantined BIGINT DEFAULT 0")

    def replace_reference_tables(self, con, files: dict[str, list[str]], schema: str = "reference") -> dict[str, int]:
        """Replaces each reference table (songs, artists, users, subscriptions) with the rows of
        its Parquet files, in one transaction: a re-run gives the same tables."""
        schema = identifier(schema)
        counts = {}
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            for table, paths in sorted(files.items()):
                name = f"{schema}.{identifier(table)}"
                # `catalog=<seed>-<songs>-<users>` in the key becomes a column: several catalogs can
                # share the lake without mixing their rows.
                con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM read_parquet(?, hive_partitioning = true)", [paths])
                counts[table] = con.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return counts

    def loaded_batch_ids(self, con) -> set[str]:
        return {r[0] for r in con.execute(f"SELECT batch_id FROM {self.ledger_table}").fetchall()}

    def load_batches(self, con, batches: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Loads prepared batches and their ledger rows in one transaction: all or nothing.

        Batches the ledger already has are skipped. Returns (loaded, skipped).
        """
        # Rows of a bronze table have no order to keep: without it DuckDB inserts in parallel
        # (1 M rows: 1.3 s -> 1.0 s, bench/stage.py).
        con.execute("SET preserve_insertion_order = false")
        con.execute("BEGIN TRANSACTION")
        try:
            ids = [b["batch_id"] for b in batches]
            seen = {r[0] for r in con.execute(f"SELECT batch_id FROM {self.ledger_table} WHERE list_contains(?, batch_id)", [ids]).fetchall()}
            todo = [b for b in batches if b["batch_id"] not in seen]
            skipped = [b for b in batches if b["batch_id"] in seen]
            if not todo:
                con.execute("ROLLBACK")
                return [], skipped
            paths = [p for b in todo for p in b["local_paths"]]
            # The files sit at <local root>/<lake key>: the key is each row's source_file.
            root_len = len(todo[0]["local_paths"][0]) - len(todo[0]["files"][0])
            before = con.execute(f"SELECT count(*) FROM {self.bronze_table}").fetchone()[0]
            con.execute(
                f"""INSERT INTO {self.bronze_table} BY NAME
                    SELECT * EXCLUDE (filename), substr(filename, ?) AS source_file
                    FROM read_parquet(?, filename = true, hive_partitioning = false)""",
                [root_len + 1, paths],
            )
            inserted = con.execute(f"SELECT count(*) FROM {self.bronze_table}").fetchone()[0] - before
            expected = sum(b["rows"] for b in todo)
            if inserted != expected:
                raise RuntimeError(f"inserted {inserted} rows for {len(todo)} batches whose manifests say {expected}")
            quarantine = [p for b in todo for p in b["quarantine_local_paths"]]
            if quarantine:
                # Quarantine Parquet carries its own source_file (the lake's JSONL key).
                before = con.execute(f"SELECT count(*) FROM {self.quarantine_table}").fetchone()[0]
                con.execute(f"INSERT INTO {self.quarantine_table} BY NAME SELECT * FROM read_parquet(?, hive_partitioning = false)", [quarantine])
                inserted = con.execute(f"SELECT count(*) FROM {self.quarantine_table}").fetchone()[0] - before
                if inserted != sum(b["quarantined"] for b in todo):
                    raise RuntimeError(f"inserted {inserted} quarantined records; the manifests say {sum(b['quarantined'] for b in todo)}")
            con.executemany(
                f"""INSERT INTO {self.ledger_table} (batch_id, kafka_partition, start_offset, end_offset, files, rows, quarantined, loaded_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, timezone('UTC', now()))""",
                [[b["batch_id"], b["partition"], b["start_offset"], b["end_offset"], b["files"], b["rows"], b["quarantined"]] for b in todo],
            )
            con.execute("COMMIT")
            return todo, skipped
        except BaseException:
            con.execute("ROLLBACK")
            raise
