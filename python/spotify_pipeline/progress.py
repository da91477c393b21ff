"""Progress lines for task logs and the command line, from the core's progress reports."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from spotify_pipeline._core import Progress, ProgressCallback


def format_progress(p: Progress) -> str:
    done, total = p["done"], p.get("total")
    rate = p.get("rate_per_s") or 0.0
    head = f"{p['stage']}: {done:,}"
    if total:
        head += f"/{total:,} ({100.0 * done / total:.1f}%)"
    line = f"{head} at {rate:,.0f}/s"
    if p.get("bytes"):
        line += f", {p['bytes'] / 1e6:,.1f} MB"
    if p.get("eta_s") is not None and total and done < total:
        line += f", ETA {p['eta_s']:.1f}s"
    return line


def log_progress(log: logging.Logger | Any) -> ProgressCallback:
    """A progress callback that writes one line per report to ``log``."""

    def report(p: Progress) -> None:
        log.info("%s", format_progress(p))

    return report
