"""Simulation settings: the one place that turns operator and command-line arguments into the
Rust simulator's config."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from spotify_pipeline import _core

FAULT_KEYS = ("late_rate", "max_late_ms", "duplicate_rate", "malformed_rate")


def optional(value: Any, cast: type) -> Any:
    """``cast(value)``, with None and "" (an empty templated field) meaning "not set"."""
    return None if value is None or value == "" else cast(value)


def parse_start_ms(start: str | datetime) -> int:
    t = start if isinstance(start, datetime) else datetime.fromisoformat(str(start).replace("Z", "+00:00"))
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return int(t.timestamp() * 1000)


def sim_config(
    *,
    seed: Any = 42,
    start: str | datetime | None = None,
    events: int | None = None,
    users: Any = 500,
    songs: Any = 2_000,
    catalog_seed: Any = 2026,
    zipf_s: Any = 1.1,
    sessions_per_user_per_day: Any = 3.0,
    new_release_share: Any = 0.1,
    faults: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The simulator's config. Without a ``start``, the simulation ends about ``now``: it starts
    the estimated span of ``events`` earlier (whole minutes), so no event lies in the future."""
    faults = {k: v for k, v in (faults or {}).items() if v not in (None, "")}
    unknown = set(faults) - set(FAULT_KEYS)
    if unknown:
        raise ValueError(f"unknown fault settings {sorted(unknown)}; known: {FAULT_KEYS}")
    cfg: dict[str, Any] = {
        "seed": int(seed),
        "catalog_seed": int(catalog_seed),
        "users": int(users),
        "songs": int(songs),
        "zipf_s": float(zipf_s),
        "sessions_per_user_per_day": float(sessions_per_user_per_day),
        "new_release_share": float(new_release_share),
        "faults": {"max_late_ms": 2 * 3_600_000, **{k: float(v) if k.endswith("rate") else int(v) for k, v in faults.items()}},
    }
    if start not in (None, ""):
        cfg["start_ms"] = parse_start_ms(start)
    else:
        now = now or datetime.now(timezone.utc)
        # Events stamped after "now" would be invalid downstream: place them to end just before.
        cfg["start_ms"] = _core.start_ending_at({**cfg, "start_ms": 0}, events or 0, int(now.timestamp() * 1000))
    return cfg
