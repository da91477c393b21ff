"""Kafka with authentication, end to end through an Airflow connection's extra: the local
broker's SASL/PLAIN listener (scripts/stack.sh), the producer, the drain and the lag sensor.
The password reaches librdkafka and nothing else: not the XCom, not the log, not the trigger."""

from __future__ import annotations

import json
import logging

import pytest

import spotify_pipeline as sp
from reconcile import committed_bronze
from spotify_pipeline import _core

pytestmark = pytest.mark.integration


@pytest.fixture
def sasl_connection(stack, monkeypatch) -> dict:
    extra = {
        "bootstrap.servers": stack.sasl_bootstrap, "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN",
        "sasl.username": stack.sasl_user, "sasl.password": stack.sasl_password,
    }
    monkeypatch.setenv("AIRFLOW_CONN_KAFKA_SASL", json.dumps({"conn_type": "kafka", "extra": extra}))
    monkeypatch.setenv("AIRFLOW_CONN_KAFKA_SASL_WRONG", json.dumps({"conn_type": "kafka", "extra": {**extra, "sasl.password": "wrong"}}))
    monkeypatch.setenv("AIRFLOW_CONN_LAKE_SASL", json.dumps({
        "conn_type": "aws", "login": stack.access_key, "password": stack.secret_key, "extra": {"endpoint_url": stack.s3_endpoint},
    }))
    return extra


def test_produce_drain_and_sense_through_a_sasl_connection(stack, topic, lake_prefix, sasl_connection, caplog):
    from airflow.sdk.exceptions import TaskDeferred

    from spotify_pipeline.operators.drain import KafkaDrainOperator
    from spotify_pipeline.operators.produce import SpotifyProducerOperator
    from spotify_pipeline.sensors import KafkaLagSensor

    caplog.set_level(logging.DEBUG)
    lake_url = stack.lake(lake_prefix)["url"]
    produced = SpotifyProducerOperator(task_id="produce", kafka_conn_id="kafka_sasl", topic=topic, events=3_000, seed=81,
                                       partitions=2).execute(context={})
    assert produced["events"] == 3_000
    lag = KafkaLagSensor(task_id="lag", kafka_conn_id="kafka_sasl", lake_conn_id="lake_sasl", topic=topic, lake_url=lake_url, min_lag=3_000)
    assert lag.execute(context={})["lag"] == 3_000
    drained = KafkaDrainOperator(task_id="drain", kafka_conn_id="kafka_sasl", lake_conn_id="lake_sasl", topic=topic,
                                 lake_url=lake_url).execute(context={})
    assert drained["rows"] == 3_000
    assert len(committed_bronze(stack, lake_prefix, topic)) == 3_000
    with pytest.raises(TaskDeferred) as deferred:  # nothing left: it defers, carrying no secret
        lag.execute(context={})
    stored = json.dumps(deferred.value.trigger.serialize())
    assert stack.sasl_password not in stored

    everything = json.dumps([produced, drained]) + caplog.text
    assert stack.sasl_password not in everything

    # A wrong password fails fast and says so, without echoing it.
    with pytest.raises(sp.SpotifyPipelineError) as refused:
        _core.produce(
            {"client": {**sasl_connection, "sasl.password": "wrong"}, "topic": topic, "timeout_s": 10}, {"seed": 1}, {"count": 10},
        )
    assert "uthentication" in str(refused.value) and "wrong" not in str(refused.value).replace("wrong_", "")


def test_the_connection_test_button_reaches_the_cluster_or_says_why_not(stack, sasl_connection, monkeypatch):
    """SpotifyKafkaHook.test_connection (the UI's Test button): the brokers through plaintext and
    SASL; a wrong password and a closed port fail in seconds, saying why, without the password."""
    import time

    from spotify_pipeline.hooks.kafka import SpotifyKafkaHook

    monkeypatch.setenv("AIRFLOW_CONN_KAFKA_PLAIN", json.dumps({"conn_type": "kafka", "extra": {"bootstrap.servers": stack.bootstrap}}))
    monkeypatch.setenv("AIRFLOW_CONN_KAFKA_CLOSED", json.dumps({"conn_type": "kafka", "extra": {"bootstrap.servers": "127.0.0.1:1"}}))
    ok, msg = SpotifyKafkaHook("kafka_plain").test_connection()
    assert ok and stack.bootstrap in msg, msg
    ok, msg = SpotifyKafkaHook("kafka_sasl").test_connection()
    assert ok and "1 broker" in msg, msg
    for conn, why in (("kafka_sasl_wrong", "SASL authentication"), ("kafka_closed", "no Kafka broker at 127.0.0.1:1")):
        t = time.monotonic()
        ok, msg = SpotifyKafkaHook(conn).test_connection()
        assert not ok and why in msg and time.monotonic() - t < 15, msg
        assert stack.sasl_password not in msg
