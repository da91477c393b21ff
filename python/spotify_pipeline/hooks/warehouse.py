"""Which warehouse a connection points at: DuckDB (conn type ``duckdb``, the embedded default)
or Snowflake (conn type ``snowflake``). Both hooks load prepared bronze batches the same way:
``ensure_tables``, ``loaded_batch_ids``, ``load_batches``, ``replace_reference_tables``."""

from __future__ import annotations

from typing import Any, Union

from airflow.sdk import BaseHook

from spotify_pipeline.hooks.duckdb import DuckDBWarehouseHook
from spotify_pipeline.hooks.snowflake import SnowflakeWarehouseHook

WarehouseHook = Union[DuckDBWarehouseHook, SnowflakeWarehouseHook]


def warehouse_hook(conn_id: str, schema: str = "bronze", table: str = "spotify_events") -> WarehouseHook:
    """The warehouse hook for Airflow connection ``conn_id``, chosen by its connection type."""
    conn_type = BaseHook.get_connection(conn_id).conn_type
    if conn_type == "duckdb":
        return DuckDBWarehouseHook(conn_id, schema, table)
    if conn_type == "snowflake":
        return SnowflakeWarehouseHook(conn_id, schema, table)
    raise ValueError(f"connection {conn_id!r} is of type {conn_type!r}; the warehouse must be 'duckdb' or 'snowflake'")


def warehouse_from_ref(ref: dict[str, Any]) -> WarehouseHook:
    """Rebuilds a hook from its ``ref()`` (as serialized into a trigger)."""
    if ref["conn_type"] == "duckdb":
        return DuckDBWarehouseHook(schema=ref["schema"], table=ref.get("table", "spotify_events"), path=ref["path"])
    if ref["conn_type"] == "snowflake":
        return SnowflakeWarehouseHook(ref["conn_id"], ref["schema"], ref.get("table", "spotify_events"))
    raise ValueError(f"unknown warehouse {ref!r}")
