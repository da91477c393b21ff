"""KafkaLagSensor: wait until the bronze lake is far enough behind a Kafka topic."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from spotify_pipeline.hooks.kafka import SpotifyKafkaHook
from spotify_pipeline.hooks.lake import LakeHook
from spotify_pipeline.sensors.base import CheckThenDeferSensor
from spotify_pipeline.simulation import optional
from spotify_pipeline.triggers.kafka_lag import KafkaLagTrigger, drained_already, lag_reached, measure_lag, produced_offsets

if TYPE_CHECKING:
    from spotify_pipeline._core import LagReport


class KafkaLagSensor(CheckThenDeferSensor):
    """Succeeds when at least ``min_lag`` records of ``topic`` are not in the lake yet, or the
    oldest of them is older than ``max_age_s``: the signal to run a drain.

    Lag is measured against the events table's Delta txn versions (what the drain has
    committed), not consumer-group offsets. Deferrable by default: the waiting happens in the
    triggerer, which resolves the connections itself (no secret goes into the trigger's
    arguments). Returns the lag report as XCom.

    ``produced`` (a producer's summary, e.g. ``produce.output``) makes it also succeed once those
    records are drained already: runs that overlap on one topic drain each other's records, and
    the run whose records another drain took would otherwise wait for a lag that never comes.
    """

    template_fields: Sequence[str] = ("topic", "lake_url", "min_lag", "max_age_s", "dataset", "produced")
    ui_color = "#B3E5FC"
    result_key = "report"

    def __init__(
        self,
        *,
        lake_url: str,
        kafka_conn_id: str = SpotifyKafkaHook.default_conn_name,
        lake_conn_id: str | None = LakeHook.default_conn_name,
        topic: str = "spotify_events",
        dataset: str = "spotify_events",
        min_lag: int | str = 1,
        max_age_s: float | str | None = None,
        produced: Any = None,
        timeout_s: int = 30,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.lake_url = lake_url
        self.kafka_conn_id = kafka_conn_id
        self.lake_conn_id = lake_conn_id
        self.topic = topic
        self.dataset = dataset
        self.min_lag = min_lag
        self.max_age_s = max_age_s
        self.produced = produced
        self.timeout_s = timeout_s

    def _max_age(self) -> float | None:
        return optional(self.max_age_s, float)

    def check(self) -> tuple[bool, LagReport]:
        report = measure_lag(self.topic, self.kafka_conn_id, self.lake_url, self.lake_conn_id, self.dataset, self.timeout_s)
        self.log.info("lag of %s behind %s: %s records (oldest undrained at %s ms)", self.lake_url, self.topic, report["lag"], report["oldest_undrained_ms"])
        produced = produced_offsets(self.produced)
        if drained_already(report, produced):
            self.log.info("the records this run produced are in the lake already: another drain took them")
        return lag_reached(report, int(self.min_lag), self._max_age(), produced=produced), report

    def make_trigger(self, deadline: float) -> KafkaLagTrigger:
        return KafkaLagTrigger(
            topic=self.topic, kafka_conn_id=self.kafka_conn_id, lake_url=self.lake_url, lake_conn_id=self.lake_conn_id,
            min_lag=int(self.min_lag), max_age_s=self._max_age(), dataset=self.dataset, timeout_s=self.timeout_s,
            produced=produced_offsets(self.produced), poke_interval=float(self.poke_interval), deadline=deadline,
            retries=self.transient_retries,
        )
