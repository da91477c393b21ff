"""Ingest: simulated Spotify events -> Kafka -> bronze lake -> warehouse bronze table.

Trigger it from the Airflow UI: the params form asks for the event count, pacing (burst, a rate,
or simulated time at a speed-up), the seed, the simulated start, fault-injection rates and the
target warehouse. When the stage loads batches it updates the ``spotify_staged_bronze`` Asset,
and ``spotify_transform`` (dbt silver and gold, ``dags/spotify_transform.py``) runs on it.

Connections it uses (see the README):

- ``kafka_default``     (kafka): extra ``{"bootstrap.servers": "127.0.0.1:9092"}``
- ``aws_default``       (aws): MinIO/S3 credentials, extra ``{"endpoint_url": "http://127.0.0.1:9000"}``
- ``duckdb_default``    (duckdb): extra ``{"path": "/path/to/spotify.duckdb"}``
- ``snowflake_default`` (snowflake): only when the ``warehouse`` param is ``snowflake``

Variable (optional): ``spotify_lake_url`` (default ``s3://spotify-lake``).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param, task

from spotify_pipeline.assets import BRONZE_LAKE, KAFKA_EVENTS, STAGED_BRONZE
from spotify_pipeline.hooks.duckdb import DUCKDB_POOL
from spotify_pipeline.hooks.lake import LAKE_URL_TEMPLATE
from spotify_pipeline.operators import KafkaDrainOperator, SpotifyProducerOperator, StageToWarehouseOperator
from spotify_pipeline.operators.drain import topic_partition_sets
from spotify_pipeline.sensors import BronzeBatchSensor, KafkaLagSensor

WAREHOUSE_CONN_ID = "{{ 'snowflake_default' if params.warehouse == 'snowflake' else 'duckdb_default' }}"


def _rate(name: str, what: str) -> Param:
    return Param(0.0, type="number", minimum=0, maximum=0.5, title=name, description=f"Share of events {what} (0 to 0.5).")


with DAG(
    dag_id="spotify_pipeline",
    description="Simulated Spotify events -> Kafka -> bronze lake -> warehouse (then spotify_transform builds silver/gold)",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=3,
    tags=["spotify", "medallion", "ingest"],
    params={
        "events": Param(10_000, type="integer", minimum=1, maximum=50_000_000, title="Event count",
                        description="How many events to simulate and produce (1 to 50,000,000)."),
        "seed": Param(42, type="integer", minimum=0, maximum=2**53, title="Seed",
                      description="Simulation seed: the same seed and start give the same events. Event ids "
                                  "come from the seed alone, so a second run of one seed repeats many of them and "
                                  "silver keeps each id once: give a run its own seed to add new events."),
        "rate_per_s": Param(0, type="number", minimum=0, maximum=10_000_000, title="Rate (events/s)",
                            description="Events per second. 0 with speed-up 0 = burst: as fast as the broker allows."),
        "speedup": Param(0, type="number", minimum=0, maximum=1_000_000, title="Speed-up",
                         description="Produce in simulated time, this many times faster than real time (1 = real time). "
                                     "0 = off. Use either a rate or a speed-up, not both."),
        "start": Param("", type="string", title="Simulated start",
                       pattern=r"^$|^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2})?)?(Z|[+-]\d{2}:?\d{2})?$",
                       description="Simulated start time, ISO 8601 (UTC unless an offset is given). Empty: the events end about now."),
        "late_rate": _rate("Late events", "delivered late (1 min to 2 h after they happened)"),
        "duplicate_rate": _rate("Duplicate events", "delivered twice (same event_id)"),
        "malformed_rate": _rate("Malformed records", "replaced by malformed records (the drain quarantines them)"),
        "warehouse": Param("duckdb", type="string", enum=["duckdb", "snowflake"], title="Target warehouse",
                           description="duckdb: the embedded default (connection duckdb_default). "
                                       "snowflake: connection snowflake_default."),
        "topic": Param("spotify_events", type="string", pattern=r"^[A-Za-z0-9._-]{1,200}$", title="Kafka topic",
                       description="Kafka topic to produce to and drain."),
        "drain_tasks": Param(1, type="integer", minimum=1, maximum=64, title="Drain tasks",
                             description="Drain tasks in parallel, each over a set of partitions (1 to 64)."),
    },
    render_template_as_native_obj=True,
    doc_md=__doc__,
) as dag:
    produce = SpotifyProducerOperator(
        task_id="produce",
        topic="{{ params.topic }}",
        events="{{ params.events }}",
        seed="{{ params.seed }}",
        start="{{ params.start }}",
        rate_per_s="{{ params.rate_per_s }}",
        speedup="{{ params.speedup }}",
        faults={
            "late_rate": "{{ params.late_rate }}",
            "duplicate_rate": "{{ params.duplicate_rate }}",
            "malformed_rate": "{{ params.malformed_rate }}",
        },
        lake_url=LAKE_URL_TEMPLATE,
        outlets=[KAFKA_EVENTS],
    )
    wait_for_records = KafkaLagSensor(
        task_id="wait_for_records",
        topic="{{ params.topic }}",
        lake_url=LAKE_URL_TEMPLATE,
        min_lag=1,
        # Another run on this topic may drain this run's records first: seeing them in the lake also ends the wait.
        produced=produce.output,
        deferrable=True,
        poke_interval=10,
        timeout=3600,
    )

    @task
    def plan_drain(topic: str, tasks: int) -> list[list[int]]:
        """Splits the topic's partitions into sets, one per mapped drain task."""
        return topic_partition_sets(topic, tasks)

    drain_sets = plan_drain("{{ params.topic }}", "{{ params.drain_tasks }}")
    drain = KafkaDrainOperator.partial(
        task_id="drain",
        topic="{{ params.topic }}",
        lake_url=LAKE_URL_TEMPLATE,
        outlets=[BRONZE_LAKE],
    ).expand(partitions=drain_sets)
    wait_for_batches = BronzeBatchSensor(
        task_id="wait_for_batches",
        lake_url=LAKE_URL_TEMPLATE,
        warehouse_conn_id=WAREHOUSE_CONN_ID,
        min_batches=1,
        # Another run's stage may load this run's batches first: seeing them loaded also ends the wait.
        drained=drain.output,
        deferrable=True,
        poke_interval=10,
        timeout=3600,
    )
    stage = StageToWarehouseOperator(
        task_id="stage",
        lake_url=LAKE_URL_TEMPLATE,
        warehouse_conn_id=WAREHOUSE_CONN_ID,
        pool=DUCKDB_POOL,
        outlets=[STAGED_BRONZE],
    )

    produce >> wait_for_records >> drain_sets
    drain >> wait_for_batches >> stage
