"""StageToWarehouseOperator: load the bronze Delta tables' new versions into the warehouse, exactly once."""

from __future__ import annotations

import tempfile
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator, Context

from spotify_pipeline import _core
from spotify_pipeline.hooks.bronze_tables import LAKE_TABLES
from spotify_pipeline.hooks.lake import LakeHook
from spotify_pipeline.hooks.warehouse import WarehouseHook, warehouse_hook
from spotify_pipeline.progress import log_progress

# The catalog's Delta tables in the lake's reference/ (the producer publishes them).
REFERENCE_TABLES = ("songs", "artists", "users", "subscriptions")


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
        chunk_versions: int = 256,
        chunk_rows: int = 5_000_000,
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
            summary = self._stage(warehouse, lake, con)
        self._describe_outlet_events(context, summary)
        self.log.info(
            "Loaded %s rows (and %s quarantined records) from %d files of versions %s into %s",
            f"{summary['rows']:,}", f"{summary['quarantined']:,}", summary["files"], summary["versions"], warehouse.bronze_table,
        )
        return summary

    def _stage(self, warehouse: WarehouseHook, lake: dict[str, Any], con) -> dict[str, Any]:
        warehouse.ensure_tables(con)
        loaded = warehouse.loaded_versions(con)
        after = {t: loaded.get(t, -1) for t in LAKE_TABLES}
        pending = _core.pending_versions(lake, self.dataset, after["events"], after["quarantine"])
        summary: dict[str, Any] = {
            "versions": {t: [after[t] + 1, pending[f"{t}_version"]] for t in LAKE_TABLES if pending[f"{t}_version"] > after[t]},
            "batches": 0, "rows": 0, "quarantined": 0, "files": 0, "loads": 0, "lost_to_retention": 0,
            "table": warehouse.bronze_table, "warehouse": warehouse.kind,
        }
        summary["reference"] = self._load_reference(warehouse, lake, con) if self.load_reference else {}
        chunks = self._chunks(pending, after)
        self.log.info("%s: versions to load %s, %d chunk(s)", self.lake_url, summary["versions"] or "none", len(chunks))
        if not chunks:
            return summary
        # Each chunk is prepared, then loaded with its ledger rows in one transaction, so progress
        # is kept as it goes and local disk use stays bounded by two chunks. The next chunk is
        # fetched (Rust, GIL released) while the warehouse loads this one. Chunks are large:
        # DuckDB loads one big INSERT much faster than several small ones (1 M rows: 1.2 s as
        # one, 2.7 s as ten).
        progress = log_progress(self.log)
        with tempfile.TemporaryDirectory(prefix="spotify-stage-") as tmp, ThreadPoolExecutor(1, "stage-fetch") as fetcher:

            def prepare(chunk: dict[str, dict[str, Any]]):
                return fetcher.submit(self._prepare, lake, chunk, tmp, progress, warehouse.needs_source_file_column)

            upcoming = prepare(chunks[0])
            for n, _ in enumerate(chunks):
                chunk = upcoming.result()
                if n + 1 < len(chunks):
                    upcoming = prepare(chunks[n + 1])
                if not warehouse.load_range(con, chunk):
                    raise RuntimeError(
                        f"another load moved {warehouse.versions_table} while this one ran (from {[(t, r['after']) for t, r in chunk.items()]}); "
                        "what it loaded stands: re-run to load the rest"
                    )
                summary["loads"] += 1
                for t, r in chunk.items():
                    rows = sum(f["rows"] for f in r["files"])
                    summary["rows" if t == "events" else "quarantined"] += rows
                    summary["files"] += len(r["files"])
                    if t == "events":
                        summary["batches"] += len(r["files"])
                        summary["lost_to_retention"] += sum(lost["records"] for lost in r.get("lost", []))
                    for f in r["files"]:
                        Path(f["local_path"]).unlink(missing_ok=True)
                self.log.info("loaded chunk %d of %d: %s", n + 1, len(chunks), {t: [r["after"] + 1, r["last_version"]] for t, r in chunk.items()})
        return summary

    @staticmethod
    def _prepare(lake: dict[str, Any], chunk: dict[str, dict[str, Any]], tmp: str, progress, source_file_column: bool) -> dict[str, dict[str, Any]]:
        """Fetches the chunk's files (checked, all or nothing) and adds where each now is."""
        for t, r in chunk.items():
            if not r["files"]:
                continue
            prepared = _core.prepare_files(lake, t, r["files"], tmp, progress, source_file_column=source_file_column)
            for f, p in zip(r["files"], prepared, strict=True):
                f["local_path"] = p["local_path"]
        return chunk

    def _chunks(self, pending: dict[str, Any], after: dict[str, int]) -> list[dict[str, dict[str, Any]]]:
        """Consecutive versions of the events table, up to ``chunk_rows`` rows or
        ``chunk_versions`` versions a chunk; the quarantine table's pending versions go with the
        first chunk (they are few and small). The last chunk reaches the versions read now."""
        def files_of(change: dict[str, Any]) -> list[dict[str, Any]]:
            return [{**f, "version": change["version"]} for f in change["files"]]

        def lost_of(change: dict[str, Any]) -> list[dict[str, Any]]:
            return [{**lost, "version": change["version"]} for lost in change.get("lost", [])]

        chunks: list[dict[str, dict[str, Any]]] = []
        start, rows, files, lost, count = after["events"], 0, [], [], 0
        for change in pending["events"]:
            files += files_of(change)
            lost += lost_of(change)
            rows += sum(f["rows"] for f in change["files"])
            count += 1
            if rows >= self.chunk_rows or count >= self.chunk_versions:
                chunks.append({"events": {"after": start, "last_version": change["version"], "files": files, "lost": lost}})
                start, rows, files, lost, count = change["version"], 0, [], [], 0
        if start < pending["events_version"]:
            chunks.append({"events": {"after": start, "last_version": pending["events_version"], "files": files, "lost": lost}})
        if pending["quarantine_version"] > after["quarantine"]:
            q = {"after": after["quarantine"], "last_version": pending["quarantine_version"], "files": [f for c in pending["quarantine"] for f in files_of(c)]}
            if chunks:
                chunks[0]["quarantine"] = q
            else:
                chunks.append({"quarantine": q})
        return chunks

    def _describe_outlet_events(self, context: Context, summary: dict[str, Any]) -> None:
        """Tells downstream (asset-scheduled) DAGs which warehouse was loaded, and how much."""
        outlet_events = context.get("outlet_events")
        if outlet_events is None:
            return
        for outlet in self.outlets:
            outlet_events[outlet].extra = {k: summary[k] for k in ("warehouse", "table", "files", "rows", "quarantined")}

    def _load_reference(self, warehouse: WarehouseHook, lake: dict[str, Any], con) -> dict[str, int]:
        """Dimension tables from the lake's reference Delta tables (published by the producer)."""
        with tempfile.TemporaryDirectory(prefix="spotify-reference-") as tmp:
            files = {name: [path for _, path in _core.fetch_reference(lake, name, tmp)] for name in REFERENCE_TABLES}
            files = {name: paths for name, paths in files.items() if paths}
            if not files:
                self.log.info("No reference data in %s/reference", self.lake_url)
                return {}
            counts = warehouse.replace_reference_tables(con, files)
        self.log.info("Reference tables: %s", counts)
        return counts
