"""RecordsWaitingTrigger (the AssetWatcher trigger of spotify_ingest) on the real stack: it fires
on a count and on an age, once per arrival of new records, and outlives a lake that is away."""

from __future__ import annotations

import asyncio
import json

import pytest

from spotify_pipeline import _core
from spotify_pipeline.hooks.lake import DEFAULT_LAKE_URL, configured_lake_url
from spotify_pipeline.triggers import records_waiting
from spotify_pipeline.triggers.records_waiting import RecordsWaitingTrigger

pytestmark = pytest.mark.integration

SIM = {"seed": 51, "start_ms": 1_772_323_200_000, "users": 100, "songs": 300}
DRAIN = {"group_id": "watcher-tests", "dataset": "spotify_events", "idle_timeout_s": 30}


@pytest.fixture
def connections(stack, monkeypatch):
    lake = {"conn_type": "aws", "login": stack.access_key, "password": stack.secret_key, "extra": {"endpoint_url": stack.s3_endpoint}}
    monkeypatch.setenv("AIRFLOW_CONN_KAFKA_RW", json.dumps({"conn_type": "kafka", "extra": {"bootstrap.servers": stack.bootstrap}}))
    monkeypatch.setenv("AIRFLOW_CONN_LAKE_RW", json.dumps(lake))
    monkeypatch.setenv("AIRFLOW_CONN_LAKE_RW_DOWN", json.dumps({**lake, "extra": {"endpoint_url": "http://127.0.0.1:1"}}))


class Watch:
    """One trigger's run, as the triggerer drives it (one task, for as long as the watch lasts);
    its events are read one by one, waiting at most ``timeout`` for each."""

    def __init__(self, trigger: RecordsWaitingTrigger) -> None:
        self.loop = asyncio.new_event_loop()
        self.queue: asyncio.Queue = asyncio.Queue()

        async def drive():
            async for event in trigger.run():
                await self.queue.put(event)

        self.task = self.loop.create_task(drive())

    def next(self, timeout: float):
        return self.loop.run_until_complete(asyncio.wait_for(self.queue.get(), timeout))

    def close(self) -> None:
        self.task.cancel()
        self.loop.run_until_complete(asyncio.gather(self.task, return_exceptions=True))
        self.loop.close()


def watch(topic: str, lake_url: str, lake_conn_id: str = "lake_rw", **kwargs) -> Watch:
    return Watch(RecordsWaitingTrigger(topic=topic, kafka_conn_id="kafka_rw", lake_url=lake_url, lake_conn_id=lake_conn_id, poke_interval=0.2, **kwargs))


def test_fires_on_count_once_per_arrival(stack, topic, lake_prefix, connections):
    kafka, lake = stack.kafka(topic), stack.lake(lake_prefix)
    _core.produce(kafka, SIM, {"count": 50})
    w = watch(topic, lake["url"], min_lag=10, max_age_s=None)
    try:
        event = w.next(30)
        assert event.payload["lag"] == 50 and event.payload["topic"] == topic
        assert sum(event.payload["high_watermarks"].values()) == 50
        # The same 50 still wait (no drain yet): no second event for them.
        with pytest.raises(TimeoutError):
            w.next(2.5)
        # Five more arrive: 55 wait, and records arrived since the last event.
        _core.produce(kafka, {**SIM, "seed": 52}, {"count": 5})
        assert w.next(30).payload["lag"] == 55
        # Drained: nothing waits; new records below the count do not fire.
        _core.drain(kafka, lake, DRAIN)
        _core.produce(kafka, {**SIM, "seed": 53}, {"count": 3})
        with pytest.raises(TimeoutError):
            w.next(2.5)
        assert not w.task.done()
    finally:
        w.close()


def test_fires_on_age_and_outlives_a_lake_that_is_away(stack, topic, lake_prefix, connections, monkeypatch):
    kafka, lake = stack.kafka(topic), stack.lake(lake_prefix)
    _core.produce(kafka, SIM, {"count": 3})
    # Three records are far below a million, but the oldest is older than zero seconds.
    w = watch(topic, lake["url"], min_lag=1_000_000, max_age_s=0)
    try:
        assert w.next(30).payload["lag"] == 3
    finally:
        w.close()
    # An unreachable lake is logged and checked again (after RETRY_INTERVAL_S), not fatal.
    monkeypatch.setattr(records_waiting, "RETRY_INTERVAL_S", 0.2)
    w = watch(topic, lake["url"], "lake_rw_down", min_lag=1, max_age_s=None)
    try:
        with pytest.raises(TimeoutError):
            w.next(3)
        assert not w.task.done(), "the watch ended"
    finally:
        w.close()


def test_serializes_ids_not_secrets_and_reads_the_lake_variable(stack, topic, connections, monkeypatch):
    trigger = RecordsWaitingTrigger(topic=topic, kafka_conn_id="kafka_rw", lake_conn_id="lake_rw", min_lag=5, max_age_s=1.5)
    path, kwargs = trigger.serialize()
    assert path == "spotify_pipeline.triggers.records_waiting.RecordsWaitingTrigger"
    assert RecordsWaitingTrigger(**kwargs).serialize() == (path, kwargs)
    stored = json.dumps(kwargs)
    assert stack.secret_key not in stored and stack.bootstrap not in stored
    # lake_url None: the Variable, read where the trigger runs.
    monkeypatch.setenv("AIRFLOW_VAR_SPOTIFY_LAKE_URL", "s3://elsewhere/lake")
    assert configured_lake_url() == "s3://elsewhere/lake" != DEFAULT_LAKE_URL
