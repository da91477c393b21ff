"""BronzeBatchTrigger: waits in the triggerer until committed bronze batches are not loaded yet."""

from __future__ import annotations

from typing import Any

from spotify_pipeline import _core
from spotify_pipeline.hooks.warehouse import warehouse_from_ref
from spotify_pipeline.triggers.base import PollingTrigger


def unloaded_batches(lake: dict[str, Any], topic: str, warehouse: dict[str, Any]) -> dict[str, Any] | None:
    """Committed batches of ``topic`` that the warehouse's ledger does not list, or None while a
    DuckDB warehouse file is busy (another process writes it: the next check will see).
    ``warehouse`` is a warehouse hook's ``ref()``."""
    loaded = warehouse_from_ref(warehouse).loaded_batch_ids_or_busy()
    if loaded is None:
        return None
    pending = _core.pending_batches(lake, topic, sorted(loaded))
    return {"batches": len(pending), "rows": sum(m["rows"] for m in pending), "batch_ids": [m["batch_id"] for m in pending][:50]}


class BronzeBatchTrigger(PollingTrigger):
    """Fires ``{"status": "ready", "pending": ...}`` once at least ``min_batches`` committed
    batches are unloaded; ``{"status": "error", ...}`` if a check fails."""

    result_key = "pending"

    def __init__(self, lake: dict[str, Any], topic: str, warehouse: dict[str, Any], min_batches: int = 1, poke_interval: float = 30.0) -> None:
        super().__init__(poke_interval)
        self.lake = lake
        self.topic = topic
        self.warehouse = warehouse
        self.min_batches = min_batches

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "spotify_pipeline.triggers.bronze_batch.BronzeBatchTrigger",
            {
                "lake": self.lake, "topic": self.topic, "warehouse": self.warehouse,
                "min_batches": self.min_batches, "poke_interval": self.poke_interval,
            },
        )

    def check(self) -> dict[str, Any] | None:
        return unloaded_batches(self.lake, self.topic, self.warehouse)

    def is_ready(self, pending: dict[str, Any] | None) -> bool:
        return pending is not None and pending["batches"] >= self.min_batches
