"""StageToWarehouseOperator: load committed bronze batches into the warehouse, exactly once."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator, Context

from spotify_pipeline import _core
from spotify_pipeline.hooks.lake import LakeHook
from spotify_pipeline.hooks.warehouse import WarehouseHook, warehouse_hook
from spotify_pipeline.progress import log_progress


class StageToWarehouseOperator(BaseOperator):
    """Loads every committed, not-yet-loaded bronze batch of ``topic`` into the warehouse's
    bronze table (and its quarantined records into ``<table>_quarantine``), with the batches'
    ledger entries in the same transaction (one per chunk of ``chunk_batches``). A re-run is a
    no-op.

    The warehouse is ``warehouse_conn_id``'s: a ``duckdb`` connection (the embedded default) or
    a ``snowflake`` one. The Rust core reads the manifests and fetches each batch as checked,
    load-ready Parquet; the warehouse loads it. With ``load_reference`` it also replaces the dimension tables
    ``reference.songs/artists/users/subscriptions`` from the lake's ``reference/`` data.
    Returns a summary XCom: batches, rows, files, skipped, reference table row counts.
    """

    template_fields: Sequence[str] = ("topic", "lake_url", "schema", "table", "warehouse_conn_id")
    ui_color = "#FFF8E1"

    def __init__(
        self,
        *,
        lake_url: str,
        lake_conn_id: str | None = LakeHook.default_conn_name,
        warehouse_conn_id: str = "duckdb_default",
        topic: str = "spotify_events",
        schema: str = "bronze",
        table: str = "spotify_events",
        load_reference: bool = True,
        chunk_batches: int = 64,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.lake_url = lake_url
        self.lake_conn_id = lake_conn_id
        self.warehouse_conn_id = warehouse_conn_id
        self.topic = topic
        self.schema = schema
        self.table = table
        self.load_reference = load_reference
        self.chunk_batches = chunk_batches

    def execute(self, context: Context) -> dict[str, Any]:
        warehouse = warehouse_hook(self.warehouse_conn_id, self.schema, self.table)
        lake = LakeHook(self.lake_url, self.lake_conn_id).lake_config()
        with warehouse.connect() as con:
            warehouse.ensure_tables(con)
            loaded = warehouse.loaded_batch_ids(con)
        pending = _core.pending_batches(lake, self.topic, sorted(loaded))
        self.log.info("%d committed batches in %s, %d already loaded, %d to load", len(pending) + len(loaded), self.lake_url, len(loaded), len(pending))
        summary = {
            "batches": 0, "rows": 0, "quarantined": 0, "files": 0, "skipped_already_loaded": len(loaded),
            "table": warehouse.bronze_table, "warehouse": warehouse.ref()["conn_type"],
        }
        summary["reference"] = self._load_reference(warehouse, lake) if self.load_reference else {}
        if not pending:
            self._describe_outlet_events(context, summary)
            return summary
        # In chunks: each chunk is prepared, then loaded with its ledger rows in one transaction,
        # so progress is kept as it goes and local disk use stays bounded by one chunk.
        progress = log_progress(self.log)
        with tempfile.TemporaryDirectory(prefix="spotify-stage-") as tmp:
            for i in range(0, len(pending), self.chunk_batches):
                prepared = _core.prepare_batches(
                    lake, pending[i : i + self.chunk_batches], tmp, progress, source_file_column=warehouse.needs_source_file_column
                )
                with warehouse.connect() as con:
                    loaded_now, skipped = warehouse.load_batches(con, prepared)
                summary["batches"] += len(loaded_now)
                summary["rows"] += sum(b["rows"] for b in loaded_now)
                summary["quarantined"] += sum(b["quarantined"] for b in loaded_now)
                summary["files"] += sum(len(b["files"]) for b in loaded_now)
                summary["skipped_already_loaded"] += len(skipped)
                for batch in prepared:
                    for path in batch["local_paths"] + batch["quarantine_local_paths"]:
                        Path(path).unlink(missing_ok=True)
                self.log.info("loaded %d of %d batches", min(i + self.chunk_batches, len(pending)), len(pending))
        self._describe_outlet_events(context, summary)
        self.log.info(
            "Loaded %s rows (and %s quarantined records) from %d batches into %s",
            f"{summary['rows']:,}", f"{summary['quarantined']:,}", summary["batches"], warehouse.bronze_table,
        )
        return summary

    def _describe_outlet_events(self, context: Context, summary: dict[str, Any]) -> None:
        """Tells downstream (asset-scheduled) DAGs which warehouse was loaded, and how much."""
        outlet_events = context.get("outlet_events")
        if outlet_events is None:
            return
        for outlet in self.outlets:
            outlet_events[outlet].extra = {k: summary[k] for k in ("warehouse", "table", "batches", "rows", "quarantined")}

    def _load_reference(self, warehouse: WarehouseHook, lake: dict[str, Any]) -> dict[str, int]:
        """Dimension tables from the lake's reference/ data (published by the producer)."""
        with tempfile.TemporaryDirectory(prefix="spotify-reference-") as tmp:
            fetched = _core.fetch_prefix(lake, "reference", ".parquet", tmp)
            files: dict[str, list[str]] = {}
            for key, path in fetched:
                files.setdefault(key.split("/")[1], []).append(path)
            if not files:
                self.log.info("No reference data in %s/reference", self.lake_url)
                return {}
            with warehouse.connect() as con:
                counts = warehouse.replace_reference_tables(con, files)
        self.log.info("Reference tables: %s", counts)
        return counts
