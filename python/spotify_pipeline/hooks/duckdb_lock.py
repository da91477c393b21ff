"""A DuckDB file held by another process: how to tell, and how to wait for it.

DuckDB allows one writing process per file, and a process that holds the file read-write keeps
every other process out, readers included: opening it fails with an IO error that says so
("Could not set lock on file ...: Conflicting lock is held in ..."). :func:`is_lock_error` tells
that error from others (the dashboard, the DuckDB hook's ``loaded_versions_or_busy``);
:func:`retry_while_busy` waits it out (the dashboard page and its export), and
:func:`connect_when_free` opens the file for the tasks that write it (the stage, dbt), which
must wait out a reader: a dashboard, a BI tool or a person with the ``duckdb`` CLI.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import duckdb

T = TypeVar("T")

# How long a writing task waits for readers to let go of the file, by default. A dashboard
# refresh holds it for well under a second; a person's `duckdb` CLI session holds it until they
# quit, which a task should report rather than outwait.
DEFAULT_LOCK_TIMEOUT_S = 120.0


class WarehouseBusy(Exception):
    """The DuckDB file is locked by a writing process."""


def is_lock_error(e: BaseException) -> bool:
    """Whether ``e`` is DuckDB refusing to open a file another process holds."""
    text = str(e).lower()
    return "lock" in text and ("conflicting" in text or "could not set lock" in text or "lock on file" in text)


def lock_holder(e: BaseException) -> str:
    """Who holds the file, from DuckDB's error ("... is held in /usr/bin/python3 (PID 123)"),
    with the process's command line when this machine can see it."""
    m = re.search(r"held in (.+?) \(PID (\d+)\)", str(e))
    if not m:
        return "another process (DuckDB did not say which)"
    program, pid = m.group(1), m.group(2)
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        cmdline = ""
    return f"PID {pid} ({cmdline[:200] or program})"


def connect_when_free(
    path: str, *, read_only: bool = False, timeout_s: float = DEFAULT_LOCK_TIMEOUT_S, log: Any = None
) -> duckdb.DuckDBPyConnection:
    """``duckdb.connect(path)``, retried while another process holds the file, every 25-100 ms
    for ``timeout_s``; then :class:`WarehouseBusy` naming the holder.

    The retries stay short on purpose: a reader that polls (a dashboard, a BI tool) opens the file
    again within milliseconds of closing it, so the gaps a writer can take are short; backing off
    to seconds would miss nearly all of them (a reader holding it 300 ms of every 320 ms left a
    backing-off stage failing after 3 s, and leaves these retries through in a few tries)."""
    import duckdb

    def attempt() -> duckdb.DuckDBPyConnection:
        try:
            return duckdb.connect(path, read_only=read_only)
        except duckdb.IOException as e:
            if is_lock_error(e):
                raise WarehouseBusy(str(e)) from e
            raise

    waits = 0

    def waiting(e: WarehouseBusy, delay: float) -> None:
        nonlocal waits
        waits += 1
        if log is not None and waits % 50 == 1:  # about every 5 s
            log.info("%s is held by %s; waiting (at most %.0fs)", path, lock_holder(e), timeout_s)

    try:
        return retry_while_busy(attempt, delay_s=0.025, max_delay_s=0.1, timeout_s=timeout_s, on_retry=waiting)
    except WarehouseBusy as e:
        raise WarehouseBusy(f"{path} was still held by {lock_holder(e)} after {timeout_s:.0f}s: {e}") from e


def retry_while_busy(
    read: Callable[[], T],
    *,
    delay_s: float,
    attempts: int | None = None,
    timeout_s: float | None = None,
    max_delay_s: float = math.inf,
    on_retry: Callable[[WarehouseBusy, float], None] | None = None,
) -> T:
    """``read()``, called again while it raises :class:`WarehouseBusy`: after ``delay_s``, then
    twice as long each time (at most ``max_delay_s``), until ``attempts`` calls were made or
    ``timeout_s`` has passed since the first; then the last :class:`WarehouseBusy` is raised.
    ``on_retry(error, delay)`` is called before each wait."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    delay = delay_s
    made = 0
    while True:
        made += 1
        try:
            return read()
        except WarehouseBusy as e:
            if (attempts is not None and made >= attempts) or (deadline is not None and time.monotonic() >= deadline):
                raise
            if on_retry is not None:
                on_retry(e, delay)
            time.sleep(delay)
            delay = min(delay * 2, max_delay_s)
