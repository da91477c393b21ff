"""BronzeBatchTrigger: waits in the triggerer until committed bronze batches are not loaded yet."""

from __future__ import annotations

import os
from typing import Any

from spotify_pipeline import _core
from spotify_pipeline.hooks.duckdb import identifier
from spotify_pipeline.triggers.base import PollingTrigger


def unloaded_batches(lake: dict[str, Any], topic: str, duckdb_path: str, ledger: str) -> dict[str, Any] | None:
    """Committed batches of ``topic`` that the warehouse ledger does not list, or None when the
    DuckDB file is busy (another process writes it: the next check will see)."""
    import duckdb

    schema, table = (identifier(x) for x in ledger.split("."))
    loaded: list[str] = []
    # A database file that does not exist yet has loaded nothing.
    if os.path.exists(duckdb_path):
        try:
            with duckdb.connect(duckdb_path, read_only=True) as con:
                exists = con.execute(
                    "select count(*) from information_schema.tables where table_schema = ? and table_name = ?", [schema, table]
                ).fetchone()[0]
                if exists:
                    loaded = [r[0] for r in con.execute(f"select batch_id from {schema}.{table}").fetchall()]
        except duckdb.IOException as e:
            if "lock" in str(e).lower():
                return None
            raise
    pending = _core.pending_batches(lake, topic, loaded)
    return {"batches": len(pending), "rows": sum(m["rows"] for m in pending), "batch_ids": [m["batch_id"] for m in pending][:50]}


class BronzeBatchTrigger(PollingTrigger):
    """Fires ``{"status": "ready", "pending": ...}`` once at least ``min_batches`` committed
    batches are unloaded; ``{"status": "error", ...}`` if a check fails."""

    result_key = "pending"

    def __init__(self, lake: dict[str, Any], topic: str, duckdb_path: str, ledger: str, min_batches: int = 1, poke_interval: float = 30.0) -> None:
        super().__init__(poke_interval)
        self.lake = lake
        self.topic = topic
        self.duckdb_path = duckdb_path
        self.ledger = ledger
        self.min_batches = min_batches

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "spotify_pipeline.triggers.bronze_batch.BronzeBatchTrigger",
            {
                "lake": self.lake, "topic": self.topic, "duckdb_path": self.duckdb_path, "ledger": self.ledger,
                "min_batches": self.min_batches, "poke_interval": self.poke_interval,
            },
        )

    def check(self) -> dict[str, Any] | None:
        return unloaded_batches(self.lake, self.topic, self.duckdb_path, self.ledger)

    def is_ready(self, pending: dict[str, Any] | None) -> bool:
        return pending is not None and pending["batches"] >= self.min_batches
