"""The DuckDB warehouse: bronze tables, load ledgers, and exactly-once loads of Delta versions.

Connection type ``duckdb``: the database file's path is the extra's ``path`` (or the host),
for example ``{"conn_type": "duckdb", "extra": {"path": "/data/spotify.duckdb"}}``; the extra's
``lock_timeout_s`` (default 120) bounds how long a writer waits for readers of the file.

DuckDB allows one writing process per file, so every task that writes it runs in the one-slot
pool ``spotify_duckdb`` (see ``dags/spotify_pipeline.py``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from spotify_pipeline.hooks.bronze_tables import FILE_LEDGER, BronzeTables, ledger_row
from spotify_pipeline.hooks.duckdb_lock import DEFAULT_LOCK_TIMEOUT_S, connect_when_free, is_lock_error

if TYPE_CHECKING:
    import duckdb

    from spotify_pipeline._core import LakeTable

DUCKDB_TYPES = {
    "string": "VARCHAR",
    "binary": "BLOB",
    "int32": "INTEGER",
    "int64": "BIGINT",
    "date": "DATE",
    # Stored as UTC wall-clock time (TIMESTAMP, like Snowflake's TIMESTAMP_NTZ).
    "timestamp_utc": "TIMESTAMP",
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

    TYPES = DUCKDB_TYPES
    # DuckDB derives each row's source_file from the file path: no Parquet rewrite needed.
    needs_source_file_column = False
    kind = "duckdb"
    PARAM = "?"
    NOW = "timezone('UTC', now())"

    def __init__(
        self, duckdb_conn_id: str = default_conn_name, schema: str = "bronze", table: str = "spotify_events", path: str | None = None
    ) -> None:
        super().__init__()
        self.duckdb_conn_id = duckdb_conn_id
        self.schema = identifier(schema)
        self.table = identifier(table)
        self._path = path

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": ["schema", "login", "password", "port"],
            "relabeling": {"host": "Database file path"},
            "placeholders": {"host": "/data/spotify.duckdb"},
        }

    def test_connection(self) -> tuple[bool, str]:
        """The connection form's Test button: the file's directory exists and, if the file
        exists, it opens read-only (another process writing it holds it: said so). Creates
        nothing."""
        import duckdb

        try:
            path = Path(self.path)
        except ValueError as e:
            return False, str(e)
        if not path.parent.is_dir():
            return False, f"the directory {path.parent} does not exist"
        if not path.exists():
            return True, f"{path} does not exist yet: the first stage creates it (DuckDB {duckdb.__version__})"
        try:
            with duckdb.connect(str(path), read_only=True) as con:
                tables = con.execute("select count(*) from information_schema.tables").fetchone()[0]  # type: ignore[index]  # count(*) returns one row
        except duckdb.Error as e:
            return False, f"{path} cannot be opened: {e}"
        return True, f"{path} opened read-only: {tables} tables (DuckDB {duckdb.__version__})"

    @property
    def path(self) -> str:
        if self._path:
            return self._path
        conn = self.get_connection(self.duckdb_conn_id)
        path = conn.extra_dejson.get("path") or conn.host
        if not path:
            raise ValueError(f"DuckDB connection {self.duckdb_conn_id!r} has no path (extra.path or host)")
        self._path = str(path)
        self._lock_timeout_s = float(conn.extra_dejson.get("lock_timeout_s", DEFAULT_LOCK_TIMEOUT_S))
        return self._path

    @property
    def lock_timeout_s(self) -> float:
        """How long a writer waits for other processes to let go of the file: the extra's
        ``lock_timeout_s``, by default ``DEFAULT_LOCK_TIMEOUT_S``."""
        _ = self.path
        return getattr(self, "_lock_timeout_s", DEFAULT_LOCK_TIMEOUT_S)

    def connect(self, read_only: bool = False) -> duckdb.DuckDBPyConnection:
        """The database file, opened once no other process holds it (for at most
        ``lock_timeout_s``; then :class:`WarehouseBusy` names the holder)."""
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        return connect_when_free(self.path, read_only=read_only, timeout_s=self.lock_timeout_s, log=self.log)

    def loaded_versions_or_busy(self) -> dict[str, int] | None:
        """The version ledger's last loaded version per lake table, read-only, or None while
        another process writes the file."""
        import duckdb

        if not Path(self.path).exists():
            return {}
        try:
            with duckdb.connect(self.path, read_only=True) as con:
                exists = con.execute(
                    "select count(*) from information_schema.tables where table_schema = ? and table_name = '_load_versions'", [self.schema]
                ).fetchone()[0]  # type: ignore[index]  # count(*) returns one row
                return self.loaded_versions(con) if exists else {}
        except duckdb.IOException as e:
            if is_lock_error(e):
                return None
            raise

    def ensure_tables(self, con: Any) -> None:
        for statement in self.create_statements():
            con.execute(statement)

    def replace_reference_tables(self, con: Any, files: dict[str, list[str]], schema: str = "reference") -> dict[str, int]:
        """Replaces each reference table (songs, artists, users, subscriptions) with the rows of
        its Parquet files, in one transaction: a re-run gives the same tables."""
        schema = identifier(schema)
        counts: dict[str, int] = {}
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

    def loaded_versions(self, con: Any) -> dict[str, int]:
        """The last loaded Delta version of each lake table (absent: none loaded yet)."""
        return {t: int(v) for t, v in con.execute(self.loaded_versions_sql()).fetchall()}

    def load_range(self, con: Any, ranges: dict[LakeTable, dict[str, Any]]) -> bool:
        """Loads each lake table's range of versions (``ranges[table]``: ``after``,
        ``last_version``, ``files`` prepared on local disk) with its ledger rows, all tables in
        one transaction: all or nothing. Returns False, loading nothing, if the ledger is no
        longer at ``after`` (another load got there first)."""
        # Rows of a bronze table have no order to keep: without it DuckDB inserts in parallel
        # (1 M rows: 1.3 s -> 1.0 s, bench/stage.py).
        con.execute("SET preserve_insertion_order = false")
        con.execute("BEGIN TRANSACTION")
        try:
            if not self.ledger_is_at(con, ranges):
                con.execute("ROLLBACK")
                return False
            for lake_table, r in ranges.items():
                files = r["files"]
                if files:
                    target = self.table_for(lake_table)
                    # The files sit at <local root>/<lake key>: the key is each row's source_file.
                    root_len = len(files[0]["local_path"]) - len(files[0]["key"])
                    before = con.execute(f"SELECT count(*) FROM {target}").fetchone()[0]
                    con.execute(
                        f"""INSERT INTO {target} BY NAME
                            SELECT * EXCLUDE (filename), substr(filename, ?) AS source_file
                            FROM read_parquet(?, filename = true, hive_partitioning = false)""",
                        [root_len + 1, [f["local_path"] for f in files]],
                    )
                    inserted = con.execute(f"SELECT count(*) FROM {target}").fetchone()[0] - before
                    expected = sum(f["rows"] for f in files)
                    if inserted != expected:
                        raise RuntimeError(f"inserted {inserted} rows into {target}; the lake's commits say {expected}")
                    con.executemany(self.insert_sql(self.ledger_table, FILE_LEDGER), [ledger_row(lake_table, f) for f in files])
                for statement, params in self.range_ledger_rows(lake_table, r):
                    con.execute(statement, params)
            con.execute("COMMIT")
            return True
        except BaseException:
            con.execute("ROLLBACK")
            raise
