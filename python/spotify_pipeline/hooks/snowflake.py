"""The Snowflake warehouse: the same bronze table, quarantine table and load ledger as DuckDB,
loaded exactly once through the Airflow Snowflake provider's hook.

A range of Delta versions loads as: ``PUT`` its files to an internal stage under a fresh load
id, then in ONE transaction a check that the version ledger is still where the load started,
``COPY INTO … MATCH_BY_COLUMN_NAME`` for events and quarantine, a row-count check against the
commits' statistics, and the ledger rows; then the staged files are removed. Snowflake's own
load metadata would also skip a file loaded twice, but it lasts 64 days and knows nothing of
Delta versions: the ledger is what makes a re-run a no-op.

Snowflake does not enforce the ledger's primary key, and a transaction does not see another's
uncommitted rows, so two loaders (two Airflow deployments, a manual run beside a scheduled one:
nothing here is serialized by a pool) could both find the ledger at the same version and both
load. Each load transaction therefore first UPDATEs the one row of ``<schema>._load_lock``:
Snowflake lets one transaction at a time hold an UPDATE on a table, so a second loader waits
there until the first commits, then finds the ledger moved and loads nothing.

The connection is a normal ``snowflake`` connection (``apache-airflow-providers-snowflake``,
install ``spotify-pipeline[snowflake]``). The bronze Parquet files are rewritten by the Rust
core with a ``source_file`` column (``prepare_files(..., source_file_column=True)``), since
``COPY`` matches columns by name.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from spotify_pipeline.hooks.bronze_tables import FILE_LEDGER, BronzeTables, ledger_row
from spotify_pipeline.hooks.duckdb import identifier

if TYPE_CHECKING:
    from spotify_pipeline._core import LakeTable

SNOWFLAKE_TYPES = {
    "string": "VARCHAR",
    "binary": "BINARY",
    "int32": "INTEGER",
    "int64": "BIGINT",
    "date": "DATE",
    # UTC wall-clock time, like the DuckDB table's TIMESTAMP.
    "timestamp_utc": "TIMESTAMP_NTZ(6)",
}
# DuckDB's names for the Parquet types of the reference tables, as Snowflake types.
_REFERENCE_TYPES = {"VARCHAR": "VARCHAR", "BIGINT": "BIGINT", "INTEGER": "INTEGER", "DOUBLE": "DOUBLE", "BOOLEAN": "BOOLEAN", "DATE": "DATE"}
_LOCAL_PATH = re.compile(r"^[A-Za-z0-9_./=+-]+$")

log = logging.getLogger(__name__)


@contextmanager
def _transaction(cur: Any) -> Iterator[None]:
    cur.execute("BEGIN")
    try:
        yield
        cur.execute("COMMIT")
    except BaseException:
        cur.execute("ROLLBACK")
        raise


class _AlreadyLoaded(Exception):
    """Another loader moved the version ledger: this load rolls back."""


def _put(cur: Any, local_path: str, stage_dir: str) -> None:
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

    TYPES = SNOWFLAKE_TYPES
    # Whether the core should add source_file to the bronze Parquet (COPY matches by name).
    needs_source_file_column = True
    kind = "snowflake"
    PARAM = "%s"
    NOW = "SYSDATE()"

    def connect(self) -> Any:
        from airflow.providers.snowflake.hooks.snowflake import SnowflakeHook

        return SnowflakeHook(snowflake_conn_id=self.snowflake_conn_id).get_conn()

    @property
    def lock_table(self) -> str:
        return f"{self.schema}._load_lock"

    def ensure_tables(self, con: Any) -> None:
        cur = con.cursor()
        for statement in self.create_statements():
            cur.execute(statement)
        cur.execute(f"CREATE TABLE IF NOT EXISTS {self.lock_table} (holder VARCHAR, locked_at TIMESTAMP_NTZ)")
        # One row to UPDATE (two, if two loaders create it at once: the UPDATE locks the table).
        cur.execute(f"INSERT INTO {self.lock_table} SELECT NULL, NULL WHERE NOT EXISTS (SELECT 1 FROM {self.lock_table})")
        cur.execute(f"CREATE STAGE IF NOT EXISTS {self.stage} FILE_FORMAT = (TYPE = PARQUET)")

    def claim(self, con: Any, cur: Any, ranges: dict[LakeTable, dict[str, Any]], holder: str) -> bool:
        """Inside a load transaction: takes the load lock (waiting for another loader's commit),
        then tells whether the version ledger is still where this load started."""
        cur.execute(f"UPDATE {self.lock_table} SET holder = %s, locked_at = SYSDATE()", [holder])
        return self.ledger_is_at(con, ranges)

    def loaded_versions(self, con: Any) -> dict[str, int]:
        cur = con.cursor()
        cur.execute(self.loaded_versions_sql())
        return {t: int(v) for t, v in cur.fetchall()}

    def loaded_versions_or_busy(self) -> dict[str, int] | None:
        """The version ledger's last versions (Snowflake is never "busy" the way a DuckDB file is)."""
        with self.connect() as con:
            cur = con.cursor()
            cur.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s AND table_name = '_LOAD_VERSIONS'",
                [self.schema.upper()],
            )
            return self.loaded_versions(con) if cur.fetchone()[0] else {}

    def _count(self, cur: Any, table: str) -> int:
        cur.execute(f"SELECT count(*) FROM {table}")
        count: int = cur.fetchone()[0]
        return count

    def _stage_files(self, cur: Any, load_dir: str, paths: list[str], kind: str, tmp: Path) -> None:
        """PUTs ``paths`` under ``@stage/<load_dir>/<kind>/``, renamed 0.parquet, 1.parquet, ...:
        lake file names repeat across hour folders, and the rows carry their own source_file."""
        flat = tmp / load_dir / kind
        flat.mkdir(parents=True, exist_ok=True)
        for i, path in enumerate(paths):
            link = flat / f"{i}.parquet"
            link.hardlink_to(path)
            _put(cur, str(link), f"{self.stage}/{load_dir}/{kind}")

    def load_range(self, con: Any, ranges: dict[LakeTable, dict[str, Any]]) -> bool:
        """Loads each lake table's range of versions with its ledger rows in one transaction:
        all or nothing. Returns False, loading nothing, if the version ledger is no longer at
        ``after`` once this load holds the load lock (see the module documentation)."""
        cur = con.cursor()
        load_dir = f"load_{uuid.uuid4().hex}"
        staged = {t: r for t, r in ranges.items() if r["files"]}
        for lake_table, r in staged.items():
            first = r["files"][0]
            tmp = Path(first["local_path"][: -len(first["key"])]) / "_snowflake"
            self._stage_files(cur, load_dir, [f["local_path"] for f in r["files"]], lake_table, tmp)
        try:
            with _transaction(cur):
                if not self.claim(con, cur, ranges, load_dir):
                    raise _AlreadyLoaded
                for lake_table, r in ranges.items():
                    self._load_in_transaction(cur, lake_table, r, load_dir)
        except _AlreadyLoaded:
            return False
        finally:
            self._remove_staged(cur, load_dir)
        return True

    def _load_in_transaction(self, cur: Any, lake_table: str, r: dict[str, Any], load_dir: str) -> None:
        """COPY one table's staged files, check the row count, write its ledger rows."""
        files = r["files"]
        if files:
            table = self.table_for(lake_table)
            before = self._count(cur, table)
            cur.execute(
                f"COPY INTO {table} FROM @{self.stage}/{load_dir}/{lake_table}/ "
                "FILE_FORMAT = (TYPE = PARQUET) MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE ON_ERROR = ABORT_STATEMENT"
            )
            inserted = self._count(cur, table) - before
            expected = sum(f["rows"] for f in files)
            if inserted != expected:
                raise RuntimeError(f"COPY INTO {table} loaded {inserted} rows; the lake's commits say {expected}")
            for f in files:
                cur.execute(self.insert_sql(self.ledger_table, FILE_LEDGER), ledger_row(lake_table, f))
        for statement, params in self.range_ledger_rows(lake_table, r):
            cur.execute(statement, params)

    def _remove_staged(self, cur: Any, load_dir: str) -> None:
        try:
            cur.execute(f"REMOVE @{self.stage}/{load_dir}/")
        except Exception as e:  # noqa: BLE001 - the files are inert once the load committed or rolled back
            self.log.warning("could not remove staged files @%s/%s: %s", self.stage, load_dir, e)

    def replace_reference_tables(self, con: Any, files: dict[str, list[str]], schema: str = "reference") -> dict[str, int]:
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
        counts: dict[str, int] = {}
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


def dbt_profile_env(conn_id: str) -> dict[str, str]:
    """The dbt profile's ``SNOWFLAKE_*`` environment variables from the Airflow ``snowflake``
    connection ``conn_id``: login, password, schema, and the extras account, warehouse, database,
    role (also under their ``extra__snowflake__`` names). Unset fields are left out; no connection
    gives ``{}`` (the profile then reads the environment's variables as they are)."""
    try:
        conn = BaseHook.get_connection(conn_id)
    except Exception:  # noqa: BLE001 - a connection missing (or no backend to ask) leaves the environment's variables
        log.info("no connection %r: the Snowflake profile reads SNOWFLAKE_* from the environment", conn_id)
        return {}
    extra = conn.extra_dejson

    def pick(*keys: str) -> str | None:
        return next((str(extra[k]) for k in keys if extra.get(k)), None)

    env = {
        "SNOWFLAKE_ACCOUNT": pick("account", "extra__snowflake__account"),
        "SNOWFLAKE_USER": conn.login or None,
        "SNOWFLAKE_PASSWORD": conn.password or None,
        "SNOWFLAKE_ROLE": pick("role", "extra__snowflake__role"),
        "SNOWFLAKE_WAREHOUSE": pick("warehouse", "extra__snowflake__warehouse"),
        "SNOWFLAKE_DATABASE": pick("database", "extra__snowflake__database"),
        "SNOWFLAKE_SCHEMA": conn.schema or None,
    }
    return {k: v for k, v in env.items() if v is not None}


def _reference_type(duckdb_type: str) -> str:
    if duckdb_type.startswith("TIMESTAMP"):
        return "TIMESTAMP_NTZ(3)"
    return _REFERENCE_TYPES.get(duckdb_type, "VARCHAR")
