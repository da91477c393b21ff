"""StageToWarehouseOperator: load the bronze Delta tables' new versions into the warehouse, exactly once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, Context

from spotify_pipeline.hooks.lake import LakeHook
from spotify_pipeline.hooks.warehouse import warehouse_hook
from spotify_pipeline.progress import log_progress
from spotify_pipeline.stage import DEFAULT_CHUNK_ROWS, DEFAULT_CHUNK_VERSIONS, LakeStager

if TYPE_CHECKING:
    from spotify_pipeline._core import LakeConfig


class StageToWarehouseOperator(BaseOperator):
    """Loads the lake's bronze Delta tables (events and quarantine of ``dataset``) into the
    warehouse: every version after the last one in the warehouse's version ledger, up to the
    versions read now. Each chunk of versions (up to ``chunk_rows`` rows and ``chunk_versions``
    versions) loads with its ledger rows in one transaction, so a re-run is a no-op. Compaction
    commits (``dataChange=false``) add nothing to load: nothing is loaded twice.

    The warehouse is ``warehouse_conn_id``'s: a ``duckdb`` connection (the embedded default) or
    a ``snowflake`` one. The Rust core reads the Delta logs and fetches each file as checked,
    load-ready Parquet; the warehouse loads it. With ``load_reference`` it also replaces the
    dimension tables ``reference.songs/artists/users/subscriptions`` from the lake's reference
    Delta tables. Returns a summary XCom: versions, files, rows, quarantined, reference table row
    counts; its outlet Asset events carry the same counts.
    """

    template_fields: Sequence[str] = ("dataset", "lake_url", "schema", "table", "warehouse_conn_id")
    ui_color = "#FFF8E1"

    def __init__(
        self,
        *,
        lake_url: str,
        lake_conn_id: str | None = LakeHook.default_conn_name,
        warehouse_conn_id: str = "duckdb_default",
        dataset: str = "spotify_events",
        schema: str = "bronze",
        table: str = "spotify_events",
        load_reference: bool = True,
        chunk_versions: int = DEFAULT_CHUNK_VERSIONS,
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.lake_url = lake_url
        self.lake_conn_id = lake_conn_id
        self.warehouse_conn_id = warehouse_conn_id
        self.dataset = dataset
        self.schema = schema
        self.table = table
        self.load_reference = load_reference
        self.chunk_versions = chunk_versions
        self.chunk_rows = chunk_rows

    def execute(self, context: Context) -> dict[str, Any]:
        warehouse = warehouse_hook(self.warehouse_conn_id, self.schema, self.table)
        lake = LakeHook(self.lake_url, self.lake_conn_id).lake_config()
        # One connection for the whole stage: the task holds the DuckDB pool slot anyway.
        with warehouse.connect() as con:
            summary = self.stager(lake).run(warehouse, con)
        self._describe_outlet_events(context, summary)
        self.log.info(
            "Loaded %s rows (and %s quarantined records) from %d files of versions %s into %s",
            f"{summary['rows']:,}", f"{summary['quarantined']:,}", summary["files"], summary["versions"], warehouse.bronze_table,
        )
        return summary

    def stager(self, lake: LakeConfig) -> LakeStager:
        """The staging this task runs (``spotify_pipeline.stage``), with its settings."""
        return LakeStager(
            lake=lake, dataset=self.dataset, load_reference=self.load_reference, chunk_rows=int(self.chunk_rows),
            chunk_versions=int(self.chunk_versions), log=self.log, progress=log_progress(self.log),
        )

    def _describe_outlet_events(self, context: Context, summary: dict[str, Any]) -> None:
        """Tells downstream (asset-scheduled) DAGs which warehouse was loaded, and how much."""
        outlet_events = context.get("outlet_events")
        if outlet_events is None:
            return
        for outlet in self.outlets:
            outlet_events[outlet].extra = {k: summary[k] for k in ("warehouse", "table", "files", "rows", "quarantined")}
