"""BronzeBatchTrigger: waits in the triggerer until committed bronze batches are not loaded yet."""

from __future__ import annotations

from typing import Any

from spotify_pipeline import _core
from spotify_pipeline.hooks.warehouse import warehouse_from_ref
from spotify_pipeline.triggers.base import PollingTrigger


def unloaded_batches(lake: dict[str, Any], dataset: str, warehouse: dict[str, Any]) -> dict[str, Any] | None:
    """What the lake's bronze Delta tables committed after the versions in the warehouse's ledger:
    ``batches`` (data files), ``rows``, ``versions``; or None while a DuckDB warehouse file is
    busy (another process writes it: the next check will see). ``warehouse`` is a warehouse
    hook's ``ref()``."""
    loaded = warehouse_from_ref(warehouse).loaded_versions_or_busy()
    if loaded is None:
        return None
    pending = _core.pending_versions(lake, dataset, loaded.get("events", -1), loaded.get("quarantine", -1))
    files = [f for t in ("events", "quarantine") for c in pending[t] for f in c["files"]]
    return {
        "batches": len(files),
        "rows": sum(f["rows"] for c in pending["events"] for f in c["files"]),
        "versions": {t: [loaded.get(t, -1) + 1, pending[f"{t}_version"]] for t in ("events", "quarantine") if pending[f"{t}_version"] > loaded.get(t, -1)},
        "batch_ids": [f["key"] for f in files][:50],
    }


class BronzeBatchTrigger(PollingTrigger):
    """Fires ``{"status": "ready", "pending": ...}`` once at least ``min_batches`` committed
    batches are unloaded; ``{"status": "error", ...}`` if a check fails."""

    result_key = "pending"

    def __init__(self, lake: dict[str, Any], dataset: str, warehouse: dict[str, Any], min_batches: int = 1, poke_interval: float = 30.0) -> None:
        super().__init__(poke_interval)
        self.lake = lake
        self.dataset = dataset
        self.warehouse = warehouse
        self.min_batches = min_batches

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "spotify_pipeline.triggers.bronze_batch.BronzeBatchTrigger",
            {
                "lake": self.lake, "dataset": self.dataset, "warehouse": self.warehouse,
                "min_batches": self.min_batches, "poke_interval": self.poke_interval,
            },
        )

    def check(self) -> dict[str, Any] | None:
        return unloaded_batches(self.lake, self.dataset, self.warehouse)

    def is_ready(self, pending: dict[str, Any] | None) -> bool:
        return pending is not None and pending["batches"] >= self.min_batches
