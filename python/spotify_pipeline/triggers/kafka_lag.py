"""KafkaLagTrigger: waits in the triggerer until the lake is far enough behind a topic."""

from __future__ import annotations

import time
from typing import Any

from spotify_pipeline import _core
from spotify_pipeline.triggers.base import PollingTrigger


def lag_reached(report: dict[str, Any], min_lag: int, max_age_s: float | None, now_ms: int | None = None) -> bool:
    """True when at least ``min_lag`` records wait, or the oldest waits longer than ``max_age_s``."""
    if report["lag"] <= 0:
        return False
    if report["lag"] >= min_lag:
        return True
    oldest = report.get("oldest_undrained_ms")
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    return max_age_s is not None and oldest is not None and now_ms - oldest >= max_age_s * 1000


class KafkaLagTrigger(PollingTrigger):
    """Checks the lag every ``poke_interval`` seconds; fires ``{"status": "ready", "report": ...}``
    when :func:`lag_reached`, or ``{"status": "error", ...}`` if the check fails.

    ``kafka`` and ``lake`` are the resolved configs (the sensor resolves the connections before
    deferring); Airflow stores trigger arguments encrypted.
    """

    result_key = "report"

    def __init__(
        self, kafka: dict[str, Any], lake: dict[str, Any], min_lag: int, max_age_s: float | None, poke_interval: float = 30.0, dataset: str = "spotify_events"
    ) -> None:
        super().__init__(poke_interval)
        self.dataset = dataset
        self.kafka = kafka
        self.lake = lake
        self.min_lag = min_lag
        self.max_age_s = max_age_s

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "spotify_pipeline.triggers.kafka_lag.KafkaLagTrigger",
            {
                "kafka": self.kafka, "lake": self.lake, "min_lag": self.min_lag, "max_age_s": self.max_age_s,
                "poke_interval": self.poke_interval, "dataset": self.dataset,
            },
        )

    def check(self) -> dict[str, Any]:
        return _core.lag(self.kafka, self.lake, self.dataset)

    def is_ready(self, report: dict[str, Any]) -> bool:
        return lag_reached(report, self.min_lag, self.max_age_s)
