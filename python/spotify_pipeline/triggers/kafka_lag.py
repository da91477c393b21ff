"""KafkaLagTrigger: waits in the triggerer until the lake is far enough behind a topic."""

from __future__ import annotations

import time
from typing import Any

from spotify_pipeline import _core
from spotify_pipeline.hooks.kafka import SpotifyKafkaHook
from spotify_pipeline.hooks.lake import LakeHook
from spotify_pipeline.triggers.base import DEFAULT_RETRIES, PollingTrigger


def produced_offsets(produced: dict[str, Any] | None) -> list[list[int]] | None:
    """``[partition, last_offset]`` of each partition a producer's summary (its XCom) wrote to."""
    if not produced:
        return None
    return [[int(p["partition"]), int(p["last_offset"])] for p in produced["partitions"] if p["count"] > 0]


def drained_already(report: _core.LagReport, offsets: list[list[int]] | None) -> bool:
    """True when the lake's txns are past every ``[partition, last_offset]``: another drain (an
    overlapping run on the same topic) already took those records, so no lag will come for them."""
    if offsets is None:
        return False
    next_offsets = {p["partition"]: p["next_offset"] for p in report["partitions"]}
    return all(next_offsets.get(partition, 0) > last for partition, last in offsets)


def lag_reached(
    report: _core.LagReport, min_lag: int, max_age_s: float | None, now_ms: int | None = None, produced: list[list[int]] | None = None
) -> bool:
    """True when at least ``min_lag`` records wait, or the oldest waits longer than ``max_age_s``,
    or the ``produced`` records are drained already (:func:`drained_already`)."""
    if drained_already(report, produced):
        return True
    if report["lag"] <= 0:
        return False
    if report["lag"] >= min_lag:
        return True
    oldest = report.get("oldest_undrained_ms")
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    return max_age_s is not None and oldest is not None and now_ms - oldest >= max_age_s * 1000


def measure_lag(
    topic: str, kafka_conn_id: str, lake_url: str, lake_conn_id: str | None, dataset: str, timeout_s: int
) -> _core.LagReport:
    """The lag report of the lake's bronze table behind ``topic`` (see ``_core.lag``), with both
    connections resolved here, where it runs (worker or triggerer)."""
    kafka = SpotifyKafkaHook(kafka_conn_id).kafka_config(topic, timeout_s)
    return _core.lag(kafka, LakeHook(lake_url, lake_conn_id).lake_config(), dataset)


class KafkaLagTrigger(PollingTrigger):
    """Checks the lag every ``poke_interval`` seconds; fires ``{"status": "ready", "report": ...}``
    when :func:`lag_reached` (see :class:`PollingTrigger` for timeouts and errors). ``produced``
    holds ``[partition, last_offset]`` pairs (see :func:`produced_offsets`), no record data."""

    result_key = "report"

    def __init__(
        self,
        *,
        topic: str,
        kafka_conn_id: str,
        lake_url: str,
        lake_conn_id: str | None,
        min_lag: int,
        max_age_s: float | None,
        dataset: str = "spotify_events",
        timeout_s: int = 30,
        produced: list[list[int]] | None = None,
        poke_interval: float = 30.0,
        deadline: float | None = None,
        retries: int = DEFAULT_RETRIES,
    ) -> None:
        super().__init__(poke_interval, deadline, retries)
        self.topic = topic
        self.kafka_conn_id = kafka_conn_id
        self.lake_url = lake_url
        self.lake_conn_id = lake_conn_id
        self.min_lag = min_lag
        self.max_age_s = max_age_s
        self.dataset = dataset
        self.timeout_s = timeout_s
        self.produced = produced

    def kwargs(self) -> dict[str, Any]:
        return {
            "topic": self.topic, "kafka_conn_id": self.kafka_conn_id, "lake_url": self.lake_url, "lake_conn_id": self.lake_conn_id,
            "min_lag": self.min_lag, "max_age_s": self.max_age_s, "dataset": self.dataset, "timeout_s": self.timeout_s,
            "produced": self.produced,
        }

    def check(self) -> _core.LagReport:
        return measure_lag(self.topic, self.kafka_conn_id, self.lake_url, self.lake_conn_id, self.dataset, self.timeout_s)

    def is_ready(self, report: _core.LagReport) -> bool:
        return lag_reached(report, self.min_lag, self.max_age_s, produced=self.produced)
