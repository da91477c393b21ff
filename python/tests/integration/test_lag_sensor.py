"""KafkaLagSensor and its trigger on the real stack: lag measured against the bronze table's Delta
txn versions; the trigger resolves connections itself, ends at the sensor's deadline, and
retries transient errors a bounded number of times."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta

import pytest

from spotify_pipeline import _core
from spotify_pipeline.sensors import KafkaLagSensor
from spotify_pipeline.triggers.kafka_lag import KafkaLagTrigger

pytestmark = pytest.mark.integration

SIM = {"seed": 31, "start_ms": 1_772_323_200_000, "users": 100, "songs": 300}
DRAIN = {"group_id": "lag-tests", "dataset": "spotify_events", "batch_max_records": 10_000, "batch_max_bytes": 64 << 20, "idle_timeout_s": 30}


@pytest.fixture
def connections(stack, monkeypatch):
    """Airflow connections for the stack (and a lake that cannot be reached), as the triggerer
    would find them."""
    lake = {"conn_type": "aws", "login": stack.access_key, "password": stack.secret_key, "extra": {"endpoint_url": stack.s3_endpoint}}
    monkeypatch.setenv("AIRFLOW_CONN_KAFKA_LAG", json.dumps({"conn_type": "kafka", "extra": {"bootstrap.servers": stack.bootstrap}}))
    monkeypatch.setenv("AIRFLOW_CONN_LAKE_LAG", json.dumps(lake))
    monkeypatch.setenv("AIRFLOW_CONN_LAKE_DOWN", json.dumps({**lake, "extra": {"endpoint_url": "http://127.0.0.1:1"}}))


def lag_trigger(topic: str, lake_url: str, lake_conn_id: str = "lake_lag", **kwargs) -> KafkaLagTrigger:
    return KafkaLagTrigger(topic=topic, kafka_conn_id="kafka_lag", lake_url=lake_url, lake_conn_id=lake_conn_id, **kwargs)


def first_event(trigger: KafkaLagTrigger, timeout: float):
    async def first():
        return await asyncio.wait_for(anext(trigger.run()), timeout)

    return asyncio.run(first())


def test_trigger_fires_on_lag_and_on_age_and_waits_otherwise(stack, topic, lake_prefix, connections):
    kafka, lake = stack.kafka(topic), stack.lake(lake_prefix)
    _core.produce(kafka, SIM, {"count": 5_000})
    report = _core.lag(kafka, lake)
    assert report["lag"] == 5_000 == sum(p["high_watermark"] - p["next_offset"] for p in report["partitions"])
    assert report["oldest_undrained_ms"] is not None

    event = first_event(lag_trigger(topic, lake["url"], min_lag=5_000, max_age_s=None, poke_interval=0.2), 30)
    assert event.payload["status"] == "ready" and event.payload["report"]["lag"] == 5_000

    _core.drain(kafka, lake, DRAIN)
    assert _core.lag(kafka, lake)["lag"] == 0
    with pytest.raises(TimeoutError):  # nothing to drain: it keeps waiting
        first_event(lag_trigger(topic, lake["url"], min_lag=1, max_age_s=0, poke_interval=0.2), 2.5)

    _core.produce(kafka, {**SIM, "seed": 32}, {"count": 10})
    # Ten records are below a million, but the oldest is older than zero seconds.
    event = first_event(lag_trigger(topic, lake["url"], min_lag=1_000_000, max_age_s=0, poke_interval=0.2), 30)
    assert event.payload["report"]["lag"] == 10


def test_the_trigger_ends_at_the_deadline_and_bounds_its_retries(stack, topic, lake_prefix, connections):
    kafka, lake = stack.kafka(topic), stack.lake(lake_prefix)
    _core.produce(kafka, SIM, {"count": 100})
    _core.drain(kafka, lake, DRAIN)

    # poke_interval 0 is floored (one check a second, not a busy loop); the deadline ends the wait.
    started = time.monotonic()
    trigger = lag_trigger(topic, lake["url"], min_lag=1, max_age_s=None, poke_interval=0, deadline=time.time() + 2)
    assert trigger.poke_interval == 1.0
    event = first_event(trigger, 30)
    assert event.payload["status"] == "timeout" and 1.5 < time.monotonic() - started < 10

    # An unreachable lake is transient: checked again (waits 1 s, then 2 s), then the sensor fails.
    started = time.monotonic()
    event = first_event(lag_trigger(topic, lake["url"], "lake_down", min_lag=1, max_age_s=None, poke_interval=1, retries=2), 120)
    assert event.payload["status"] == "error" and "LakeError on 3 checks in a row" in event.payload["message"]
    assert time.monotonic() - started >= 3

    # A missing connection is not transient: the first check fails.
    event = first_event(lag_trigger(topic, lake["url"], "no_such_connection", min_lag=1, max_age_s=None, retries=5), 30)
    assert event.payload["status"] == "error" and "no_such_connection" in event.payload["message"]


def test_sensor_returns_at_once_with_lag_and_defers_with_ids_not_secrets(stack, topic, lake_prefix, connections):
    from airflow.sdk.exceptions import AirflowSensorTimeout, TaskDeferred

    kafka, lake = stack.kafka(topic), stack.lake(lake_prefix)
    _core.produce(kafka, SIM, {"count": 100})
    sensor = KafkaLagSensor(
        task_id="lag", topic=topic, lake_url=lake["url"], kafka_conn_id="kafka_lag", lake_conn_id="lake_lag", min_lag=50,
        timeout=600, poke_interval=0,
    )
    assert sensor.poke_interval == 1.0
    assert sensor.execute(context={})["lag"] == 100

    _core.drain(kafka, lake, DRAIN)
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(context={})
    assert deferred.value.timeout == timedelta(seconds=600)
    trigger = deferred.value.trigger
    assert isinstance(trigger, KafkaLagTrigger)
    path, kwargs = trigger.serialize()
    assert path == "spotify_pipeline.triggers.kafka_lag.KafkaLagTrigger" and kwargs["min_lag"] == 50
    assert 590 < kwargs["deadline"] - time.time() <= 600
    assert KafkaLagTrigger(**kwargs).serialize() == (path, kwargs)
    # What Airflow stores in its database names connections; it holds no secret.
    stored = json.dumps(kwargs)
    assert stack.secret_key not in stored and stack.access_key not in stored and stack.bootstrap not in stored
    with pytest.raises(RuntimeError, match="boom"):
        sensor.execute_complete(context={}, event={"status": "error", "message": "boom"})
    with pytest.raises(AirflowSensorTimeout):
        sensor.execute_complete(context={}, event={"status": "timeout", "message": "not ready"})


def test_a_non_deferrable_sensor_rides_out_a_transient_error_then_fails_on_the_next(stack, topic, lake_prefix, connections):
    from airflow.sdk.exceptions import AirflowSensorTimeout

    import spotify_pipeline as sp

    sensor = KafkaLagSensor(
        task_id="lag", topic=topic, lake_url=stack.lake(lake_prefix)["url"], kafka_conn_id="kafka_lag", lake_conn_id="lake_down",
        deferrable=False, transient_retries=1, timeout=600,
    )
    _core.produce(stack.kafka(topic), SIM, {"count": 10})
    assert sensor.poke({}) is False  # the first failure is retried
    with pytest.raises(sp.LakeError):
        sensor.poke({})  # the second in a row fails the task
    waiting = KafkaLagSensor(
        task_id="lag2", topic=topic, lake_url=stack.lake(lake_prefix)["url"], kafka_conn_id="kafka_lag", lake_conn_id="lake_lag",
        deferrable=False, min_lag=1_000, timeout=2, poke_interval=1,
    )
    with pytest.raises(AirflowSensorTimeout):
        waiting.execute(context={})


def test_records_another_drain_took_end_the_wait(stack, topic, lake_prefix, connections):
    """Two runs on one topic: the first run's drain takes the second run's records too. The
    second run's sensor, told what its producer wrote, sees them in the lake and stops waiting."""
    from airflow.sdk.exceptions import TaskDeferred

    kafka, lake = stack.kafka(topic), stack.lake(lake_prefix)
    taken = _core.produce(kafka, SIM, {"count": 300})
    _core.drain(kafka, lake, DRAIN)
    waiting = _core.produce(kafka, {**SIM, "seed": 33}, {"count": 40})

    def sensor(produced):
        return KafkaLagSensor(
            task_id="lag", topic=topic, lake_url=lake["url"], kafka_conn_id="kafka_lag", lake_conn_id="lake_lag",
            min_lag=1_000_000, produced=produced, timeout=600,
        )

    # 40 records wait, far below the threshold; the 300 of `taken` are in the lake.
    report = sensor(taken).execute(context={})
    assert report["lag"] == 40
    for produced in (None, waiting):
        with pytest.raises(TaskDeferred) as deferred:
            sensor(produced).execute(context={})
    kwargs = deferred.value.trigger.serialize()[1]
    assert kwargs["produced"] == [[p["partition"], p["last_offset"]] for p in waiting["partitions"] if p["count"]]
    with pytest.raises(TimeoutError):
        first_event(KafkaLagTrigger(**{**kwargs, "poke_interval": 0.2}), 2.5)
    # Another drain takes them: the deferred trigger fires, though the lag is 0.
    _core.drain(kafka, lake, DRAIN)
    event = first_event(KafkaLagTrigger(**{**kwargs, "poke_interval": 0.2}), 30)
    assert event.payload["status"] == "ready" and event.payload["report"]["lag"] == 0


def test_freshness_names_the_newest_record_in_the_topic_and_in_the_lake(stack, topic, lake_prefix):
    """`_core.freshness`: the Kafka timestamps of the newest record of the topic and of the
    lake's last drained one, checked against a confluent-kafka read of the same records."""
    from reconcile import topic_records

    kafka, lake = stack.kafka(topic), stack.lake(lake_prefix)
    _core.produce(kafka, {"seed": 5}, {"count": 3_000})
    _core.drain(kafka, lake, {"group_id": "fresh", "max_records": 1_000})
    time.sleep(0.05)
    _core.produce(kafka, {"seed": 6}, {"count": 500})
    r = _core.freshness(kafka, lake)

    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": stack.bootstrap, "group.id": "fresh-check"})
    stamps = {}
    for p in r["partitions"]:
        for offset in (p["high_watermark"] - 1, p["next_offset"] - 1):
            if offset >= 0:
                c.assign([TopicPartition(topic, p["partition"], offset)])
                m = c.consume(1, timeout=10)[0]
                stamps[(p["partition"], offset)] = m.timestamp()[1]
    c.close()
    assert r["newest_ms"] == max(stamps[(p["partition"], p["high_watermark"] - 1)] for p in r["partitions"])
    assert r["newest_drained_ms"] == max(stamps[(p["partition"], p["next_offset"] - 1)] for p in r["partitions"] if p["next_offset"] > 0)
    assert r["newest_drained_ms"] < r["newest_ms"] and r["lag"] == 3_500 - 1_000
    assert len(topic_records(stack.bootstrap, topic)) == 3_500
    # The watcher's report does not pay for these reads.
    assert _core.lag(kafka, lake)["newest_ms"] is None
