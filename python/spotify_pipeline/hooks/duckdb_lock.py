"""A DuckDB file held by another process: how to tell, and how to wait for it.

DuckDB allows one writing process per file, and a process that holds the file read-write keeps
every other process out, readers included: opening it fails with an IO error that says so
("Could not set lock on file ...: Conflicting lock is held in ..."). :func:`is_lock_error` tells
that error from others (the dashboard, the DuckDB hook's ``loaded_versions_or_busy``);
:func:`retry_while_busy` waits it out (the dashboard page and its export).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class WarehouseBusy(Exception):
    """The DuckDB file is locked by a writing process."""


def is_lock_error(e: BaseException) -> bool:
    """Whether ``e`` is DuckDB refusing to open a file another process holds."""
    text = str(e).lower()
    return "lock" in text and ("conflicting" in text or "could not set lock" in text or "lock on file" in text)


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
