"""How a command reports: progress on stderr (a bar on a terminal, a line every 10 s in a log),
and its summary on stdout (one line for a person, or ``--json`` for a script)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TYPE_CHECKING, Any

from spotify_pipeline.progress import format_progress

if TYPE_CHECKING:
    from spotify_pipeline._core import Progress, ProgressCallback

# A log (not a terminal) gets one progress line this often: a service's or a cron job's log.
LOG_LINE_EVERY_S = 10.0


def add_output_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the summary as JSON (for scripts)")
    p.add_argument("--quiet", action="store_true", help="no progress, no log lines; only the summary")


def progress_reporter(quiet: bool = False, bar: bool | None = None) -> ProgressCallback:
    """The core's progress callback for a command: a bar redrawn in place when stderr is a
    terminal (or ``bar=True``), else a line every ``LOG_LINE_EVERY_S``; nothing if ``quiet``."""
    if quiet:
        return lambda _p: None
    if bar if bar is not None else sys.stderr.isatty():

        def draw(p: Progress) -> None:
            sys.stderr.write("\r" + format_progress(p).ljust(100))
            sys.stderr.flush()

        return draw
    last = [0.0]

    def line(p: Progress) -> None:
        if time.monotonic() - last[0] >= LOG_LINE_EVERY_S:
            last[0] = time.monotonic()
            sys.stderr.write(f"{format_progress(p)}\n")
            sys.stderr.flush()

    return line


def print_summary(summary: dict[str, Any], as_json: bool, line: str) -> None:
    """The summary on stdout: as JSON, or as ``line``."""
    if sys.stderr.isatty():
        sys.stderr.write("\n")  # past the progress bar
    print(json.dumps(summary, default=str) if as_json else line, flush=True)
