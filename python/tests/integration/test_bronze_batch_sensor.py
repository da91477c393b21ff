"""BronzeBatchSensor and its trigger on the real stack: committed, unloaded batches."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

import pytest

from reconcile import committed_bronze
from spotify_pipeline import _core
from spotify_pipeline.operators.stage import StageToWarehouseOperator
from spotify_pipeline.sensors import BronzeBatchSensor
from spotify_pipeline.triggers.bronze_batch import BronzeBatchTrigger, unloaded_batches

pytestmark = pytest.mark.integration

SIM = {"seed": 41, "start_ms": 1_772_323_200_000, "users": 100, "songs": 300}
DRAIN = {"group_id": "sensor-tests", "batch_max_records": 500}


def test_sensor_and_trigger_follow_the_ledger(stack, topic, lake_prefix, tmp_path, monkeypatch):
    from airflow.sdk.exceptions import TaskDeferred

    db = str(tmp_path / "wh.duckdb")
    monkeypatch.setenv("AIRFLOW_CONN_LAKE_BB", json.dumps({
        "conn_type": "aws", "login": stack.access_key, "password": stack.secret_key, "extra": {"endpoint_url": stack.s3_endpoint},
    }))
    monkeypatch.setenv("AIRFLOW_CONN_DUCKDB_BB", json.dumps({"conn_type": "duckdb", "extra": {"path": db}}))
    kafka, lake = stack.kafka(topic), stack.lake(lake_prefix)
    ids = ("lake_bb", "spotify_events", "duckdb_bb", "bronze")  # lake_url comes first

    def trigger(min_batches: int = 1) -> BronzeBatchTrigger:
        return BronzeBatchTrigger(lake_url=lake["url"], lake_conn_id="lake_bb", warehouse_conn_id="duckdb_bb", min_batches=min_batches, poke_interval=0.2)
    _core.produce(kafka, SIM, {"count": 2_000})
    _core.drain(kafka, lake, DRAIN)
    n = len(set(committed_bronze(stack, lake_prefix, topic).column("file_key").to_pylist()))

    # Before any load (no database file yet): every committed file is pending.
    sensor = BronzeBatchSensor(task_id="bb", lake_url=lake["url"], lake_conn_id="lake_bb", warehouse_conn_id="duckdb_bb", min_batches=n)
    assert sensor.execute(context={}) == unloaded_batches(lake["url"], *ids)
    assert sensor.execute(context={})["batches"] == n and sensor.execute(context={})["rows"] == 2_000

    StageToWarehouseOperator(task_id="stage", lake_url=lake["url"], lake_conn_id="lake_bb", warehouse_conn_id="duckdb_bb").execute(context={})
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(context={})
    path, kwargs = deferred.value.trigger.serialize()
    assert path.endswith("BronzeBatchTrigger") and kwargs["warehouse_conn_id"] == "duckdb_bb"
    assert BronzeBatchTrigger(**kwargs).serialize() == (path, kwargs)
    assert stack.secret_key not in json.dumps(kwargs) and db not in json.dumps(kwargs)

    async def first_event(trigger, timeout):
        return await asyncio.wait_for(anext(trigger.run()), timeout)

    with pytest.raises(TimeoutError):  # all loaded: it waits
        asyncio.run(first_event(trigger(), 2.5))

    # A writer holds the DuckDB file: the check reports "busy", and the trigger keeps waiting.
    writer = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb, time; c = duckdb.connect({db!r}); print('locked', flush=True); time.sleep(30)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert writer.stdout.readline().strip() == "locked"
        assert unloaded_batches(lake["url"], *ids) is None
        _core.produce(kafka, {**SIM, "seed": 42}, {"count": 600})
        _core.drain(kafka, lake, DRAIN)
        with pytest.raises(TimeoutError):
            asyncio.run(first_event(trigger(), 2.5))
    finally:
        writer.kill()
        writer.wait()
    time.sleep(0.2)
    event = asyncio.run(first_event(trigger(), 30))
    assert event.payload["status"] == "ready" and event.payload["pending"]["rows"] == 600


def test_batches_another_stage_loaded_end_the_wait(stack, topic, lake_prefix, tmp_path, monkeypatch):
    """Two runs share the lake's tables: one run's stage loads the other's batches too. The other
    run's sensor, told what its drain committed, sees them loaded and stops waiting."""
    from airflow.sdk.exceptions import TaskDeferred

    db = str(tmp_path / "wh.duckdb")
    monkeypatch.setenv("AIRFLOW_CONN_LAKE_BB", json.dumps({
        "conn_type": "aws", "login": stack.access_key, "password": stack.secret_key, "extra": {"endpoint_url": stack.s3_endpoint},
    }))
    monkeypatch.setenv("AIRFLOW_CONN_DUCKDB_BB", json.dumps({"conn_type": "duckdb", "extra": {"path": db}}))
    kafka, lake = stack.kafka(topic), stack.lake(lake_prefix)
    _core.produce(kafka, SIM, {"count": 1_000})
    # A run's drain mapped over two partition sets: two summaries.
    drained = [_core.drain(kafka, lake, {**DRAIN, "partitions": [0]}), _core.drain(kafka, lake, {**DRAIN, "partitions": [1, 2]})]
    assert all(s["batches"] for s in drained)

    def sensor(drained_summaries, min_batches=1):
        return BronzeBatchSensor(
            task_id="bb", lake_url=lake["url"], lake_conn_id="lake_bb", warehouse_conn_id="duckdb_bb", min_batches=min_batches,
            drained=drained_summaries, timeout=600,
        )

    # Not loaded yet: pending as usual (the threshold is what decides).
    assert sensor(drained).execute(context={})["rows"] == 1_000
    with pytest.raises(TaskDeferred) as deferred:
        sensor(drained, min_batches=1_000).execute(context={})
    kwargs = deferred.value.trigger.serialize()[1]
    assert kwargs["drained_through"] == max(b["version"] for s in drained for b in s["batches"])

    # Another run's stage loads them: nothing is pending, and this run's sensor succeeds.
    StageToWarehouseOperator(task_id="stage", lake_url=lake["url"], lake_conn_id="lake_bb", warehouse_conn_id="duckdb_bb").execute(context={})
    pending = sensor(drained).execute(context={})
    assert pending["batches"] == 0 and pending["loaded"]["events"] >= kwargs["drained_through"]
    event = asyncio.run(asyncio.wait_for(anext(BronzeBatchTrigger(**{**kwargs, "poke_interval": 0.2}).run()), 30))
    assert event.payload["status"] == "ready" and event.payload["pending"]["batches"] == 0
    # A drain that committed nothing (another run's drain took every record) has nothing to wait for.
    assert sensor({**drained[0], "batches": []}).execute(context={})["batches"] == 0
    # Without the drain's summary it waits for new batches, as before.
    with pytest.raises(TaskDeferred):
        sensor(None).execute(context={})
