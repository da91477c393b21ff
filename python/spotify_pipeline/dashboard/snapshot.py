"""The dashboard for a web page: a DuckDB file busy with a writer is retried briefly, and if it
stays busy the last good snapshot is served (kept in memory and in a JSON file next to the
database), marked with the time it was read."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from spotify_pipeline.dashboard.read import LiveLayers, now_iso, read_dashboard, with_live_freshness
from spotify_pipeline.hooks.duckdb_lock import WarehouseBusy, retry_while_busy

# (mtime, size, inode) of the database file and of its write-ahead log (None: no such file).
FileVersion = tuple[tuple[int, int, int] | None, ...]


def snapshot_path(db_path: str | os.PathLike[str]) -> Path:
    """Where the last good snapshot of ``db_path`` is kept: next to it."""
    p = Path(db_path)
    return p.with_name(p.name + ".dashboard.json")


def file_version(path: str) -> FileVersion | None:
    """Changes whenever DuckDB writes the file or its write-ahead log."""
    out: list[tuple[int, int, int] | None] = []
    for p in (path, path + ".wal"):
        try:
            st = os.stat(p)
        except FileNotFoundError:
            out.append(None)
            continue
        out.append((st.st_mtime_ns, st.st_size, st.st_ino))
    return None if out[0] is None else tuple(out)


class SnapshotSource:
    """Reads the dashboard with retries while the file is busy, and falls back to the last good
    snapshot (memory, then disk) when it stays busy.

    While the file has not changed since the last good read, that read is served again without
    opening the file: even a read-only connection takes a lock that would make a writer (the
    stager, dbt) fail to open the file, so the dashboard opens it only when there is news.
    """

    def __init__(self, path_fn: Callable[[], str], retries: int = 4, delay_s: float = 0.15, live: LiveLayers | None = None) -> None:
        self.path_fn = path_fn
        # Kafka's and the lake's freshness: read on every request, since they move without the
        # warehouse file changing.
        self.live = live
        self.retries = retries
        self.delay_s = delay_s
        self._lock = threading.Lock()
        self._last: dict[str, dict[str, Any]] = {}
        self._version: dict[str, FileVersion | None] = {}
        self.reads = 0  # opens of the warehouse, for tests and logs

    def get(self) -> dict[str, Any]:
        path = self.path_fn()
        version = file_version(path)
        if version is not None and path in self._last and self._version.get(path) == version:
            # unchanged since that read: current
            return with_live_freshness({**self._last[path], "as_of": now_iso()}, self.live)

        def read() -> dict[str, Any]:
            self.reads += 1
            return read_dashboard(path, self.live)

        try:
            data = retry_while_busy(read, attempts=self.retries, delay_s=self.delay_s)
        except WarehouseBusy as error:
            stale = self._last.get(path) or self._load(path)
            if stale is None:
                raise WarehouseBusy(f"the warehouse is busy and no snapshot was taken yet: {error}") from error
            return with_live_freshness({**stale, "source": "snapshot", "busy_reason": str(error)}, self.live)
        self._remember(path, data, version)
        return data

    def _remember(self, path: str, data: dict[str, Any], version: FileVersion | None) -> None:
        if not Path(path).exists():
            return
        with self._lock:
            self._last[path] = data
            # The version seen before the read: if a writer changed the file during the read,
            # the next request reads again.
            self._version[path] = version
            target = snapshot_path(path)
            tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
            try:
                tmp.write_text(json.dumps(data))
                os.replace(tmp, target)
            except OSError:
                tmp.unlink(missing_ok=True)

    def _load(self, path: str) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads(snapshot_path(path).read_text())
            return data
        except (OSError, ValueError):
            return None
