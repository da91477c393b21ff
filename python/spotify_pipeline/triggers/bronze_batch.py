"""BronzeBatchTrigger: waits in the triggerer until committed bronze batches are not loaded yet."""

from __future__ import annotations

from typing import Any

from spotify_pipeline import _core
from spotify_pipeline.hooks.lake import LakeHook
from spotify_pipeline.hooks.warehouse import warehouse_hook
from spotify_pipeline.triggers.base import DEFAULT_RETRIES, PollingTrigger


def unloaded_batches(lake_url: str, lake_conn_id: str | None, dataset: str, warehouse_conn_id: str, schema: str) -> dict[str, Any] | None:
    """What the lake's bronze Delta tables committed after the versions in the warehouse's ledger:
    ``batches`` (data files), ``rows``, ``versions``; or None while a DuckDB warehouse file is
    busy (another process writes it: the next check will see). Both connections are resolved
    here, where it runs (worker or triggerer)."""
    loaded = warehouse_hook(warehouse_conn_id, schema).loaded_versions_or_busy()
    if loaded is None:
        return None
    lake = LakeHook(lake_url, lake_conn_id).lake_config()
    pending = _core.pending_versions(lake, dataset, loaded.get("events", -1), loaded.get("quarantine", -1))
    files = [f for changes in (pending["events"], pending["quarantine"]) for c in changes for f in c["files"]]
    latest = {"events": pending["events_version"], "quarantine": pending["quarantine_version"]}
    return {
        "batches": len(files),
        "rows": sum(f["rows"] for c in pending["events"] for f in c["files"]),
        "versions": {t: [loaded.get(t, -1) + 1, latest[t]] for t in ("events", "quarantine") if latest[t] > loaded.get(t, -1)},
        "batch_ids": [f["key"] for f in files][:50],
        "loaded": {t: loaded.get(t, -1) for t in ("events", "quarantine")},
    }


def drained_version(drained: Any) -> int | None:
    """The newest events-table version that a drain's summary (its XCom), or the summaries of a
    mapped drain, committed; -1 when it committed nothing; None without summaries."""
    if not drained:
        return None
    summaries = [drained] if isinstance(drained, dict) else list(drained)
    return max((b["version"] for s in summaries for b in s["batches"]), default=-1)


def drain_loaded(pending: dict[str, Any], drained_through: int | None) -> bool:
    """Whether the warehouse loaded the events table through ``drained_through``. A drain's
    quarantine commit precedes its events commit, so a stage that loaded that events version
    loaded the quarantine with it."""
    return drained_through is not None and pending["loaded"]["events"] >= drained_through


def batches_ready(pending: dict[str, Any] | None, min_batches: int, drained_through: int | None = None) -> bool:
    """True when at least ``min_batches`` files wait, or :func:`drain_loaded`."""
    if pending is None:
        return False
    return drain_loaded(pending, drained_through) or pending["batches"] >= min_batches


class BronzeBatchTrigger(PollingTrigger):
    """Fires ``{"status": "ready", "pending": ...}`` when :func:`batches_ready` (see
    :class:`PollingTrigger` for timeouts and errors)."""

    result_key = "pending"

    def __init__(
        self,
        *,
        lake_url: str,
        lake_conn_id: str | None,
        warehouse_conn_id: str,
        dataset: str = "spotify_events",
        schema: str = "bronze",
        min_batches: int = 1,
        drained_through: int | None = None,
        poke_interval: float = 30.0,
        deadline: float | None = None,
        retries: int = DEFAULT_RETRIES,
    ) -> None:
        super().__init__(poke_interval, deadline, retries)
        self.lake_url = lake_url
        self.lake_conn_id = lake_conn_id
        self.warehouse_conn_id = warehouse_conn_id
        self.dataset = dataset
        self.schema = schema
        self.min_batches = min_batches
        self.drained_through = drained_through

    def kwargs(self) -> dict[str, Any]:
        return {
            "lake_url": self.lake_url, "lake_conn_id": self.lake_conn_id, "warehouse_conn_id": self.warehouse_conn_id,
            "dataset": self.dataset, "schema": self.schema, "min_batches": self.min_batches,
            "drained_through": self.drained_through,
        }

    def check(self) -> dict[str, Any] | None:
        return unloaded_batches(self.lake_url, self.lake_conn_id, self.dataset, self.warehouse_conn_id, self.schema)

    def is_ready(self, pending: dict[str, Any] | None) -> bool:
        return batches_ready(pending, self.min_batches, self.drained_through)
