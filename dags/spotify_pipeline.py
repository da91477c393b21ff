"""The medallion pipeline, end to end: produce -> drain -> stage -> dbt build.

Trigger it from the Airflow UI (the params form asks for the event count and the seed) or with
``airflow dags test spotify_pipeline``. Connections it uses (see the README):

- ``kafka_default``  (kafka): extra ``{"bootstrap.servers": "127.0.0.1:9092"}``
- ``aws_default``    (aws):   MinIO/S3 credentials, extra ``{"endpoint_url": "http://127.0.0.1:9000"}``
- ``duckdb_default`` (duckdb): extra ``{"path": "/path/to/spotify.duckdb"}``

Variables (optional): ``spotify_lake_url`` (default ``s3://spotify-lake``) and
``spotify_dbt_project_dir`` (default: the ``dbt/`` folder next to this file's ``dags/``).
"""

from __future__ import annotations

from pathlib import Path

import pendulum
from airflow.sdk import DAG, Asset, Param, task

from spotify_pipeline import _core
from spotify_pipeline.hooks.kafka import SpotifyKafkaHook
from spotify_pipeline.operators import (
    DbtBuildOperator,
    KafkaDrainOperator,
    SpotifyProducerOperator,
    StageToWarehouseOperator,
)
from spotify_pipeline.operators.drain import partition_sets
from spotify_pipeline.sensors import BronzeBatchSensor, KafkaLagSensor

LAKE_URL = "{{ var.value.get('spotify_lake_url', 's3://spotify-lake') }}"
DBT_PROJECT_DIR = str(Path(__file__).resolve().parent.parent / "dbt")
# Every task that writes the DuckDB file runs in this one-slot pool: DuckDB allows one writer.
DUCKDB_POOL = "spotify_duckdb"

with DAG(
    dag_id="spotify_pipeline",
    description="Simulated Spotify events -> Kafka -> bronze lake -> warehouse -> dbt silver/gold",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=3,
    tags=["spotify", "medallion"],
    params={
        "events": Param(10_000, type="integer", minimum=1, maximum=50_000_000, description="How many events to simulate and produce."),
        "seed": Param(42, type="integer", minimum=0, description="Simulation seed: the same seed gives the same events."),
        "topic": Param("spotify_events", type="string", pattern=r"^[A-Za-z0-9._-]{1,200}$", description="Kafka topic to produce to and drain."),
        "drain_tasks": Param(1, type="integer", minimum=1, maximum=64, description="Drain tasks in parallel, each over a set of partitions."),
        "start": Param("", type="string", description="Simulated start time (ISO 8601, UTC). Empty: the events end about now."),
        "rate_per_s": Param(0, type="number", minimum=0, maximum=10_000_000, description="Events per second; 0 = as fast as the broker allows."),
        "late_rate": Param(0.0, type="number", minimum=0, maximum=1, description="Share of events delivered late (1 min to 2 h after they happened)."),
        "duplicate_rate": Param(0.0, type="number", minimum=0, maximum=1, description="Share of events delivered twice (same event_id)."),
        "malformed_rate": Param(0.0, type="number", minimum=0, maximum=1, description="Share of records replaced by malformed ones (quarantined by the drain)."),
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
        faults={
            "late_rate": "{{ params.late_rate }}",
            "duplicate_rate": "{{ params.duplicate_rate }}",
            "malformed_rate": "{{ params.malformed_rate }}",
        },
        lake_url=LAKE_URL,
        outlets=[Asset("kafka://spotify/spotify_events")],
    )
    wait_for_records = KafkaLagSensor(
        task_id="wait_for_records",
        topic="{{ params.topic }}",
        lake_url=LAKE_URL,
        min_lag=1,
        deferrable=True,
        poke_interval=10,
        timeout=3600,
    )

    @task
    def plan_drain(topic: str, tasks: int) -> list[list[int]]:
        """Splits the topic's partitions into sets, one per mapped drain task."""
        return partition_sets(_core.topic_partitions(SpotifyKafkaHook().kafka_config(topic)), int(tasks))

    drain_sets = plan_drain("{{ params.topic }}", "{{ params.drain_tasks }}")
    drain = KafkaDrainOperator.partial(
        task_id="drain",
        topic="{{ params.topic }}",
        lake_url=LAKE_URL,
        outlets=[Asset("s3://spotify-lake/bronze/spotify_events")],
    ).expand(partitions=drain_sets)
    wait_for_batches = BronzeBatchSensor(
        task_id="wait_for_batches",
        topic="{{ params.topic }}",
        lake_url=LAKE_URL,
        min_batches=1,
        deferrable=True,
        poke_interval=10,
        timeout=3600,
    )
    stage = StageToWarehouseOperator(
        task_id="stage",
        topic="{{ params.topic }}",
        lake_url=LAKE_URL,
        pool=DUCKDB_POOL,
        outlets=[Asset("duckdb://spotify/bronze/spotify_events")],
    )
    dbt_build = DbtBuildOperator(
        task_id="dbt_build",
        project_dir="{{ var.value.get('spotify_dbt_project_dir', '" + DBT_PROJECT_DIR + "') }}",
        pool=DUCKDB_POOL,
        outlets=[Asset("duckdb://spotify/gold/fct_song_plays_daily")],
    )

    produce >> wait_for_records >> drain_sets
    drain >> wait_for_batches >> stage >> dbt_build
