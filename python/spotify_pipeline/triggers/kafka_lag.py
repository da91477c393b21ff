"""KafkaLagTrigger: waits in the triggerer until the lake is far enough behind a topic."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from spotify_pipeline import _core


def lag_reached(report: dict[str, Any], min_lag: int, max_age_s: float | None, now_ms: int | None = None) -> bool:
    """True when at least ``min_lag`` records wait, or the oldest waits longer than ``max_age_s``."""
    if report["lag"] <= 0:
        return False
    if report["lag"] >= min_lag:
        return True
    oldest = report.get("oldest_undrained_ms")
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    return max_age_s is not None and oldest is not None and now_ms - oldest >= max_age_s * 1000


class KafkaLagTrigger(BaseTrigger):
    """Checks the lag every ``poke_interval`` seconds; fires ``{"status": "ready", "report": ...}``
    when :func:`lag_reached`, or ``{"status": "error", ...}`` if the check fails.

    ``kafka`` and ``lake`` are the resolved configs (the sensor resolves the connections before
    deferring); Airflow stores trigger arguments encrypted.
    """

    def __init__(self, kafka: dict[str, Any], lake: dict[str, Any], min_lag: int, max_age_s: float | None, poke_interval: float = 30.0) -> None:
        super().__init__()
        self.kafka = kafka
        self.lake = lake
        self.min_lag = min_lag
        self.max_age_s = max_age_s
        self.poke_interval = poke_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "spotify_pipeline.triggers.kafka_lag.KafkaLagTrigger",
            {"kafka": self.kafka, "lake": self.lake, "min_lag": self.min_lag, "max_age_s": self.max_age_s, "poke_interval": self.poke_interval},
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        while True:
            try:
                # The Rust call blocks (without the GIL): keep it off the triggerer's event loop.
                report = await asyncio.to_thread(_core.lag, self.kafka, self.lake)
            except Exception as e:  # noqa: BLE001 - reported to the sensor, which fails the task
                yield TriggerEvent({"status": "error", "message": f"{type(e).__name__}: {e}"})
                return
            if lag_reached(report, self.min_lag, self.max_age_s):
                yield TriggerEvent({"status": "ready", "report": report})
                return
            self.log.info("lag %s below %s (oldest undrained %s ms); next check in %ss", report["lag"], self.min_lag, report["oldest_undrained_ms"], self.poke_interval)
            await asyncio.sleep(self.poke_interval)
