"""Loading the lake's bronze Delta versions into a warehouse, exactly once: what
``StageToWarehouseOperator`` and ``spotify-pipeline stage`` both run."""

from __future__ import annotations

import logging
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spotify_pipeline import _core
from spotify_pipeline.hooks.bronze_tables import LAKE_TABLES
from spotify_pipeline.hooks.warehouse import Warehouse

_log = logging.getLogger(__name__)

# The catalog's Delta tables in the lake's reference/ (the producer publishes them).
REFERENCE_TABLES = ("songs", "artists", "users", "subscriptions")
# Chunks are large: DuckDB loads one big INSERT much faster than several small ones (1 M rows:
# 1.2 s as one, 2.7 s as ten).
DEFAULT_CHUNK_ROWS = 5_000_000
DEFAULT_CHUNK_VERSIONS = 256


@dataclass
class LakeStager:
    """Loads the bronze tables (events and quarantine of ``dataset``) of ``lake`` (the core's
    lake config): every version after the last one in the warehouse's version ledger, up to
    the versions read now, in chunks of up to ``chunk_rows`` rows and ``chunk_versions``
    versions, each with its ledger rows in one transaction (a re-run is a no-op). With
    ``load_reference`` it also replaces the reference tables from the lake's reference/."""

    lake: _core.LakeConfig
    dataset: str = "spotify_events"
    load_reference: bool = True
    chunk_rows: int = DEFAULT_CHUNK_ROWS
    chunk_versions: int = DEFAULT_CHUNK_VERSIONS
    log: logging.Logger | Any = _log
    progress: _core.ProgressCallback = lambda _p: None

    def run(self, warehouse: Warehouse, con: Any) -> dict[str, Any]:
        """Loads every pending version into ``warehouse`` over ``con``; returns the summary."""
        lake = self.lake
        warehouse.ensure_tables(con)
        loaded = warehouse.loaded_versions(con)
        after = {t: loaded.get(t, -1) for t in LAKE_TABLES}
        pending = _core.pending_versions(lake, self.dataset, after["events"], after["quarantine"])
        latest = {"events": pending["events_version"], "quarantine": pending["quarantine_version"]}
        summary: dict[str, Any] = {
            "versions": {t: [after[t] + 1, latest[t]] for t in LAKE_TABLES if latest[t] > after[t]},
            "batches": 0, "rows": 0, "quarantined": 0, "files": 0, "loads": 0, "lost_to_retention": 0,
            "table": warehouse.bronze_table, "warehouse": warehouse.kind,
        }
        summary["reference"] = self.load_reference_tables(warehouse, con) if self.load_reference else {}
        chunks = self.chunks(pending, after)
        self.log.info("%s: versions to load %s, %d chunk(s)", self.lake["url"], summary["versions"] or "none", len(chunks))
        if not chunks:
            return summary
        # Each chunk is prepared, then loaded with its ledger rows in one transaction, so progress
        # is kept as it goes and local disk use stays bounded by two chunks. The next chunk is
        # fetched (Rust, GIL released) while the warehouse loads this one.
        progress = self.progress
        with tempfile.TemporaryDirectory(prefix="spotify-stage-") as tmp, ThreadPoolExecutor(1, "stage-fetch") as fetcher:

            def prepare(chunk: dict[_core.LakeTable, dict[str, Any]]) -> Future[dict[_core.LakeTable, dict[str, Any]]]:
                return fetcher.submit(self.prepare, lake, chunk, tmp, progress, warehouse.needs_source_file_column)

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
    def prepare(
        lake: _core.LakeConfig, chunk: dict[_core.LakeTable, dict[str, Any]], tmp: str, progress: _core.ProgressCallback | None,
        source_file_column: bool,
    ) -> dict[_core.LakeTable, dict[str, Any]]:
        """Fetches the chunk's files (checked, all or nothing) and adds where each now is."""
        for t, r in chunk.items():
            if not r["files"]:
                continue
            prepared = _core.prepare_files(lake, t, r["files"], tmp, progress, source_file_column=source_file_column)
            for f, p in zip(r["files"], prepared, strict=True):
                f["local_path"] = p["local_path"]
        return chunk

    def chunks(self, pending: _core.Pending, after: dict[_core.LakeTable, int]) -> list[dict[_core.LakeTable, dict[str, Any]]]:
        """Consecutive versions of the events table, up to ``chunk_rows`` rows or
        ``chunk_versions`` versions a chunk; the quarantine table's pending versions go with the
        first chunk (they are few and small). The last chunk reaches the versions read now."""
        def files_of(change: _core.VersionChange) -> list[dict[str, Any]]:
            return [{**f, "version": change["version"]} for f in change["files"]]

        def lost_of(change: _core.VersionChange) -> list[dict[str, Any]]:
            return [{**lost, "version": change["version"]} for lost in change.get("lost", [])]

        chunks: list[dict[_core.LakeTable, dict[str, Any]]] = []
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

    def load_reference_tables(self, warehouse: Warehouse, con: Any) -> dict[str, int]:
        """Dimension tables from the lake's reference Delta tables (published by the producer)."""
        with tempfile.TemporaryDirectory(prefix="spotify-reference-") as tmp:
            files = {name: [path for _, path in _core.fetch_reference(self.lake, name, tmp)] for name in REFERENCE_TABLES}
            files = {name: paths for name, paths in files.items() if paths}
            if not files:
                self.log.info("No reference data in %s/reference", self.lake["url"])
                return {}
            counts = warehouse.replace_reference_tables(con, files)
        self.log.info("Reference tables: %s", counts)
        return counts
