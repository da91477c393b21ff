"""The warehouse tables a stage writes, the same names and columns in every warehouse.

Column types are the core's vocabulary (``_core.load_columns``): string, binary, int32, int64,
date, timestamp_utc; each warehouse hook maps them to its own types. The ledgers are written
here once, for DuckDB and Snowflake alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from spotify_pipeline import _core

# One row per lake data file loaded (a "batch" for silver and gold: batch_id is the file's name
# without extension), so that every delivery knows when it was loaded.
FILE_LEDGER: list[tuple[str, str, bool]] = [
    ("batch_id", "string", False),
    ("table_name", "string", False),
    ("lake_version", "int64", False),
    ("source_file", "string", False),
    ("kafka_partition", "int32", True),
    ("start_offset", "int64", True),
    ("end_offset", "int64", True),
    ("rows", "int64", False),
    ("loaded_at", "timestamp_utc", False),
]

# One row per load of a range of Delta versions of a lake table: where the next load starts.
VERSION_LEDGER: list[tuple[str, str, bool]] = [
    ("table_name", "string", False),
    ("first_version", "int64", False),
    ("last_version", "int64", False),
    ("files", "int64", False),
    ("rows", "int64", False),
    ("loaded_at", "timestamp_utc", False),
]

# One row per range of Kafka records that retention deleted before a drain read them, recorded
# by a drain with allow_data_loss in its Delta commit: the warehouse counts what it never got.
LOSS_LEDGER: list[tuple[str, str, bool]] = [
    ("table_name", "string", False),
    ("lake_version", "int64", False),
    ("kafka_partition", "int32", False),
    ("from_offset", "int64", True),
    ("to_offset", "int64", False),
    ("records", "int64", False),
    ("loaded_at", "timestamp_utc", False),
]

# The lake tables a stage loads, by the core's name for them.
LAKE_TABLES: tuple[_core.LakeTable, ...] = ("events", "quarantine")


class BronzeTables:
    """``<schema>.<table>`` (events), ``<schema>.<table>_quarantine``, the file ledger
    ``<schema>._loads``, the version ledger ``<schema>._load_versions`` and the loss ledger
    ``<schema>._lost_records``. Set ``schema`` and ``table`` (validated identifiers), ``TYPES``
    (core type → warehouse type), ``PARAM`` (the driver's placeholder) and ``NOW`` (UTC now)."""

    schema: str
    table: str
    TYPES: dict[str, str]
    PARAM: str
    NOW: str

    if TYPE_CHECKING:
        # Each warehouse hook's own, over its own driver's cursor (see loaded_versions_sql).
        def loaded_versions(self, con: Any) -> dict[str, int]: ...

    @property
    def bronze_table(self) -> str:
        return f"{self.schema}.{self.table}"

    @property
    def ledger_table(self) -> str:
        return f"{self.schema}._loads"

    @property
    def versions_table(self) -> str:
        return f"{self.schema}._load_versions"

    @property
    def loss_table(self) -> str:
        return f"{self.schema}._lost_records"

    @property
    def quarantine_table(self) -> str:
        return f"{self.schema}.{self.table}_quarantine"

    def table_for(self, lake_table: str) -> str:
        return self.bronze_table if lake_table == "events" else self.quarantine_table

    def columns_ddl(self, columns: list[tuple[str, str, bool]]) -> str:
        return ",\n  ".join(f"{name} {self.TYPES[kind]}{'' if nullable else ' NOT NULL'}" for name, kind, nullable in columns)

    def create_statements(self) -> list[str]:
        """DDL of the four tables, the ledgers' keys included (Snowflake keeps but does not
        enforce them: its loader checks the version ledger inside the load's transaction)."""
        return [
            f"CREATE SCHEMA IF NOT EXISTS {self.schema}",
            f"CREATE TABLE IF NOT EXISTS {self.bronze_table} (\n  {self.columns_ddl(_core.load_columns('events'))}\n)",
            f"CREATE TABLE IF NOT EXISTS {self.quarantine_table} (\n  {self.columns_ddl(_core.load_columns('quarantine'))}\n)",
            f"CREATE TABLE IF NOT EXISTS {self.ledger_table} (\n  {self.columns_ddl(FILE_LEDGER)},\n  PRIMARY KEY (batch_id)\n)",
            f"CREATE TABLE IF NOT EXISTS {self.versions_table} (\n  {self.columns_ddl(VERSION_LEDGER)},\n  PRIMARY KEY (table_name, first_version)\n)",
            f"CREATE TABLE IF NOT EXISTS {self.loss_table} (\n  {self.columns_ddl(LOSS_LEDGER)},\n  PRIMARY KEY (table_name, lake_version, kafka_partition)\n)",
        ]

    def ledger_is_at(self, con: Any, ranges: dict[_core.LakeTable, dict[str, Any]]) -> bool:
        """Inside a load's transaction: whether the version ledger is still where each range's
        load started (``after``); if not, another loader moved it and this load must roll back."""
        now = self.loaded_versions(con)
        return all(now.get(t, -1) == r["after"] for t, r in ranges.items())

    def insert_sql(self, table: str, columns: list[tuple[str, str, bool]]) -> str:
        """INSERT of one ledger row: every column a parameter, but ``loaded_at`` the warehouse's clock."""
        return f"INSERT INTO {table} VALUES ({', '.join([self.PARAM] * (len(columns) - 1))}, {self.NOW})"

    def range_ledger_rows(self, lake_table: str, r: dict[str, Any]) -> list[tuple[str, list[Any]]]:
        """The version ledger's row of a loaded range of versions, and the loss ledger's rows of
        what those versions record as lost, as (statement, parameters)."""
        if r["last_version"] <= r["after"]:
            return []
        files = r["files"]
        rows = [(self.insert_sql(self.versions_table, VERSION_LEDGER),
                 [lake_table, r["after"] + 1, r["last_version"], len(files), sum(f["rows"] for f in files)])]
        rows += [(self.insert_sql(self.loss_table, LOSS_LEDGER),
                  [lake_table, lost["version"], lost["kafka_partition"], lost["from_offset"], lost["to_offset"], lost["records"]])
                 for lost in r.get("lost", [])]
        return rows

    def loaded_versions_sql(self) -> str:
        return f"SELECT table_name, max(last_version) FROM {self.versions_table} GROUP BY table_name"


def ledger_row(lake_table: str, f: dict[str, Any]) -> list[Any]:
    """The file ledger's row of a loaded file (``FILE_LEDGER`` order, ``loaded_at`` last and
    left to the warehouse's clock)."""
    batch_id = f["key"].rsplit("/", 1)[-1].removesuffix(".parquet")
    return [batch_id, lake_table, f["version"], f["key"], f.get("kafka_partition"), f.get("first_offset"), f.get("last_offset"), f["rows"]]
