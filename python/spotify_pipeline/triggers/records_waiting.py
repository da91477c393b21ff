"""RecordsWaitingTrigger: an Asset watcher's trigger that fires when records wait to be drained.

Airflow 3 schedules a DAG on an Asset whose ``AssetWatcher`` holds this trigger: each event it
fires is an Asset event, and the DAG runs (``dags/spotify_ingest.py``). It runs in the triggerer
for as long as the watch lasts, and never ends on its own: a broker or lake that is away, or a
connection that is missing, is logged and checked again later, not fatal to the watch.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from spotify_pipeline.hooks.kafka import SpotifyKafkaHook
from spotify_pipeline.hooks.lake import LakeHook, configured_lake_url
from spotify_pipeline.triggers.base import floored_interval
from spotify_pipeline.triggers.kafka_lag import lag_reached, measure_lag

if TYPE_CHECKING:
    from spotify_pipeline._core import LagReport

# Between checks after one failed: long enough not to flood the log while a broker is away.
RETRY_INTERVAL_S = 30.0


def new_records_since(report: LagReport, fired_at: dict[int, int]) -> bool:
    """Whether any partition's high watermark moved past where it was when the trigger last fired.

    A lag that stays (its drain failed, or is still running) fires once, not on every check:
    the next event waits for new records (or for a restart of the triggerer, which forgets)."""
    return any(p["high_watermark"] > fired_at.get(p["partition"], -1) for p in report["partitions"])


class RecordsWaitingTrigger(BaseEventTrigger):
    """Checks the lake's lag behind ``topic`` every ``poke_interval`` seconds; fires
    ``{"topic", "lag", "oldest_undrained_ms", "high_watermarks"}`` when at least ``min_lag``
    records wait, or the oldest has waited ``max_age_s``, and records arrived since it last fired.

    ``lake_url`` None reads the ``spotify_lake_url`` Variable in the triggerer (see
    :func:`configured_lake_url`). Its arguments are connection ids, never secrets: Airflow
    stores them in its database.
    """

    def __init__(
        self,
        *,
        topic: str = "spotify_events",
        kafka_conn_id: str = SpotifyKafkaHook.default_conn_name,
        lake_url: str | None = None,
        lake_conn_id: str | None = LakeHook.default_conn_name,
        dataset: str = "spotify_events",
        min_lag: int = 10_000,
        max_age_s: float | None = 30.0,
        poke_interval: float = 5.0,
        timeout_s: int = 30,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # unannotated in Airflow; super() escapes untyped_calls_exclude
        self.topic = topic
        self.kafka_conn_id = kafka_conn_id
        self.lake_url = lake_url
        self.lake_conn_id = lake_conn_id
        self.dataset = dataset
        self.min_lag = min_lag
        self.max_age_s = max_age_s
        self.poke_interval = floored_interval(poke_interval)
        self.timeout_s = timeout_s

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return f"{type(self).__module__}.{type(self).__qualname__}", {
            "topic": self.topic, "kafka_conn_id": self.kafka_conn_id, "lake_url": self.lake_url,
            "lake_conn_id": self.lake_conn_id, "dataset": self.dataset, "min_lag": self.min_lag,
            "max_age_s": self.max_age_s, "poke_interval": self.poke_interval, "timeout_s": self.timeout_s,
        }

    def check(self) -> LagReport:
        """The lag report (blocking: it runs off the triggerer's event loop)."""
        lake_url = self.lake_url or configured_lake_url()
        return measure_lag(self.topic, self.kafka_conn_id, lake_url, self.lake_conn_id, self.dataset, self.timeout_s)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        # Imported here, in the triggerer only (see triggers/base.py).
        from asgiref.sync import sync_to_async

        fired_at: dict[int, int] = {}
        while True:
            try:
                report = await sync_to_async(self.check, thread_sensitive=False)()
            except Exception as e:  # noqa: BLE001 - a watch outlives a broker, a lake or a connection that is away
                self.log.warning("lag check failed (%s: %s); next in %.0fs", type(e).__name__, e, RETRY_INTERVAL_S)
                await asyncio.sleep(RETRY_INTERVAL_S)
                continue
            if lag_reached(report, self.min_lag, self.max_age_s) and new_records_since(report, fired_at):
                fired_at = {p["partition"]: p["high_watermark"] for p in report["partitions"]}
                yield TriggerEvent({
                    "topic": self.topic, "lag": report["lag"], "oldest_undrained_ms": report["oldest_undrained_ms"],
                    "high_watermarks": {str(p): h for p, h in fired_at.items()},
                })
            await asyncio.sleep(self.poke_interval)
