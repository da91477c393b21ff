"""Which warehouse a connection points at: DuckDB (conn type ``duckdb``, the embedded default)
or Snowflake (conn type ``snowflake``). Both hooks load the lake's Delta versions the same way,
the :class:`Warehouse` protocol that callers type against."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from airflow.sdk import BaseHook

from spotify_pipeline.hooks.duckdb import DuckDBWarehouseHook
from spotify_pipeline.hooks.snowflake import SnowflakeWarehouseHook

if TYPE_CHECKING:
    from spotify_pipeline._core import LakeTable


class Warehouse(Protocol):
    """What the stage, the bronze-batch sensor and its trigger use of a warehouse hook; both
    :class:`DuckDBWarehouseHook` and :class:`SnowflakeWarehouseHook` have it. ``con`` is the
    connection :meth:`connect` returns (a context manager)."""

    # Whether the core must add a source_file column to the bronze Parquet it prepares.
    needs_source_file_column: bool

    @property
    def bronze_table(self) -> str: ...

    @property
    def versions_table(self) -> str: ...

    # "duckdb" or "snowflake": the connection type, as the stage's XCom reports it.
    kind: str

    def connect(self) -> Any: ...

    def ensure_tables(self, con: Any) -> None: ...

    def loaded_versions(self, con: Any) -> dict[str, int]: ...

    def loaded_versions_or_busy(self) -> dict[str, int] | None: ...

    def load_range(self, con: Any, ranges: dict[LakeTable, dict[str, Any]]) -> bool: ...

    def replace_reference_tables(self, con: Any, files: dict[str, list[str]], schema: str = "reference") -> dict[str, int]: ...


# The name the operators have used for it.
WarehouseHook = Warehouse


def warehouse_hook(conn_id: str, schema: str = "bronze", table: str = "spotify_events") -> Warehouse:
    """The warehouse hook for Airflow connection ``conn_id``, chosen by its connection type."""
    conn_type = BaseHook.get_connection(conn_id).conn_type
    if conn_type == "duckdb":
        return DuckDBWarehouseHook(conn_id, schema, table)
    if conn_type == "snowflake":
        return SnowflakeWarehouseHook(conn_id, schema, table)
    raise ValueError(f"connection {conn_id!r} is of type {conn_type!r}; the warehouse must be 'duckdb' or 'snowflake'")

