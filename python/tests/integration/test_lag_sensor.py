"""KafkaLagSensor and its trigger on the real stack: lag measured against the bronze table's Delta txn versions."""

from __future__ import annotations

import asyncio
import json

import pytest

from spotify_pipeline import _core
from spotify_pipeline.sensors import KafkaLagSensor
from spotify_pipeline.triggers.kafka_lag import KafkaLagTrigger

pytestmark = pytest.mark.integration

SIM = {"seed": 31, "start_ms": 1_772_323_200_000, "users": 100, "songs": 300}
DRAIN = {"group_id": "lag-tests", "dataset": "spotify_events", "batch_max_records": 10_000, "batch_max_bytes": 64 << 20, "idle_timeout_s": 30}


async def first_event(trigger: KafkaLagTrigger, timeout: float):
    return await asyncio.wait_for(anext(trigger.run()), timeout)


def test_trigger_fires_on_lag_and_on_age_and_waits_otherwise(stack, topic, lake_prefix):
    kafka, lake = stack.kafka(topic), stack.lake(lake_prefix)
    _core.produce(kafka, SIM, {"count": 5_000})
    report = _core.lag(kafka, lake)
    assert report["lag"] == 5_000 == sum(p["high_watermark"] - p["next_offset"] for p in report["partitions"])
    assert report["oldest_undrained_ms"] is not None

    event = asyncio.run(first_event(KafkaLagTrigger(kafka, lake, min_lag=5_000, max_age_s=None, poke_interval=0.2), 30))
    assert event.payload["status"] == "ready" and event.payload["report"]["lag"] == 5_000

    _core.drain(kafka, lake, DRAIN)
    assert _core.lag(kafka, lake)["lag"] == 0
    with pytest.raises(TimeoutError):  # nothing to drain: it keeps waiting
        asyncio.run(first_event(KafkaLagTrigger(kafka, lake, min_lag=1, max_age_s=0, poke_interval=0.2), 2))

    _core.produce(kafka, {**SIM, "seed": 32}, {"count": 10})
    # Ten records are below a million, but the oldest is older than zero seconds.
    event = asyncio.run(first_event(KafkaLagTrigger(kafka, lake, min_lag=1_000_000, max_age_s=0, poke_interval=0.2), 30))
    assert event.payload["report"]["lag"] == 10

    bad = {**lake, "options": {**lake["options"], "aws_endpoint": "http://127.0.0.1:1"}}
    event = asyncio.run(first_event(KafkaLagTrigger(kafka, bad, min_lag=1, max_age_s=None, poke_interval=0.2), 60))
    assert event.payload["status"] == "error" and "LakeError" in event.payload["message"]


def test_sensor_returns_at_once_with_lag_and_defers_without(stack, topic, lake_prefix, monkeypatch):
    from airflow.sdk.exceptions import TaskDeferred

    monkeypatch.setenv("AIRFLOW_CONN_KAFKA_LAG", json.dumps({"conn_type": "kafka", "extra": {"bootstrap.servers": stack.bootstrap}}))
    monkeypatch.setenv("AIRFLOW_CONN_LAKE_LAG", json.dumps({
        "conn_type": "aws", "login": stack.access_key, "password": stack.secret_key, "extra": {"endpoint_url": stack.s3_endpoint},
    }))
    kafka, lake = stack.kafka(topic), stack.lake(lake_prefix)
    _core.produce(kafka, SIM, {"count": 100})
    sensor = KafkaLagSensor(
        task_id="lag", topic=topic, lake_url=lake["url"], kafka_conn_id="kafka_lag", lake_conn_id="lake_lag", min_lag=50,
    )
    assert sensor.execute(context={})["lag"] == 100

    _core.drain(kafka, lake, DRAIN)
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(context={})
    trigger = deferred.value.trigger
    assert isinstance(trigger, KafkaLagTrigger)
    path, kwargs = trigger.serialize()
    assert path == "spotify_pipeline.triggers.kafka_lag.KafkaLagTrigger" and kwargs["min_lag"] == 50
    assert KafkaLagTrigger(**kwargs).serialize() == (path, kwargs)
    with pytest.raises(RuntimeError, match="boom"):
        sensor.execute_complete(context={}, event={"status": "error", "message": "boom"})
