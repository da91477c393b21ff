"""Simulation settings: the one place that turns operator and command-line arguments into the
Rust simulator's config."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from spotify_pipeline import _core

T = TypeVar("T")

FAULT_KEYS = ("late_rate", "max_late_ms", "duplicate_rate", "malformed_rate")


def optional(value: Any, cast: Callable[[Any], T]) -> T | None:
    """``cast(value)``, with None and "" (an empty templated field) meaning "not set"."""
    return None if value is None or value == "" else cast(value)


def parse_start_ms(start: str | datetime) -> int:
    t = start if isinstance(start, datetime) else datetime.fromisoformat(str(start).replace("Z", "+00:00"))
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return int(t.timestamp() * 1000)


# The simulator's settings and their casts; their defaults are the core's (one place).
WORLD_KEYS = {"seed": int, "catalog_seed": int, "users": int, "songs": int, "zipf_s": float,
              "sessions_per_user_per_day": float, "new_release_share": float}


def sim_config(
    *,
    start: str | datetime | None = None,
    events: int | None = None,
    faults: dict[str, Any] | None = None,
    now: datetime | None = None,
    **world: Any,
) -> _core.SimConfig:
    """The simulator's config: the core's defaults (``_core.default_sim_config()``), overridden
    by every setting given (``seed``, ``users``, ``songs``, ...; None or "" leaves the default).
    Without a ``start``, the simulation ends about ``now``: it starts the estimated span of
    ``events`` earlier (whole minutes), so no event lies in the future."""
    unknown = set(world) - set(WORLD_KEYS)
    if unknown:
        raise ValueError(f"unknown simulation settings {sorted(unknown)}; known: {sorted(WORLD_KEYS)}")
    faults = {k: v for k, v in (faults or {}).items() if v not in (None, "")}
    unknown = set(faults) - set(FAULT_KEYS)
    if unknown:
        raise ValueError(f"unknown fault settings {sorted(unknown)}; known: {FAULT_KEYS}")
    cfg = _core.default_sim_config()
    # The keys are checked above, at run time: a type checker cannot follow them into the TypedDicts.
    cfg.update(cast("_core.SimConfig", {k: WORLD_KEYS[k](v) for k, v in world.items() if v not in (None, "")}))
    cfg["faults"].update(cast("_core.Faults", {k: float(v) if k.endswith("rate") else int(v) for k, v in faults.items()}))
    if start is not None and start != "":
        cfg["start_ms"] = parse_start_ms(start)
    else:
        now = now or datetime.now(UTC)
        # Events stamped after "now" would be invalid downstream: place them to end just before.
        cfg["start_ms"] = _core.start_ending_at({**cfg, "start_ms": 0}, events or 0, int(now.timestamp() * 1000))
    return cfg
