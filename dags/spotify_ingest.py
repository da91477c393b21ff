"""Ingest on arrival: drain what waits in Kafka into the bronze lake, stage it into the warehouse.

Scheduled by an Airflow 3 ``AssetWatcher``: ``RecordsWaitingTrigger`` checks, in the triggerer,
how far the lake is behind the topic, and updates the ``spotify_records_waiting`` Asset when at
least ``MIN_LAG`` records wait or the oldest has waited ``MAX_AGE_S``; each update is a run. A
run every ``FALLBACK_CRON`` as well, in case no triggerer watches. Each run drains (``DRAIN_TASKS`` mapped
tasks, each bounded by ``DRAIN_MAX_SECONDS``), stages, and updates ``spotify_staged_bronze``, on which
``spotify_transform`` builds silver and gold.

Runs may overlap: drains on one partition commit each range once, and stages load each Delta
version once. The events come from whatever produces to the topic: your apps, or
``spotify-pipeline produce``. ``spotify_pipeline`` stays the bounded demo (it produces too).

Connections: ``kafka_default``, ``aws_default``, ``duckdb_default`` (see
``dags/spotify_pipeline.py``). Variable (optional): ``spotify_lake_url``. Environment (optional):
``SPOTIFY_INGEST_TOPIC`` (default ``spotify_events``).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Asset, AssetOrTimeSchedule, AssetWatcher, CronTriggerTimetable

from spotify_pipeline.assets import BRONZE_LAKE, STAGED_BRONZE
from spotify_pipeline.hooks.duckdb import DUCKDB_POOL
from spotify_pipeline.hooks.kafka import ingest_topic
from spotify_pipeline.retries import RETRY_DEFAULT_ARGS
from spotify_pipeline.hooks.lake import LAKE_URL_TEMPLATE
from spotify_pipeline.operators import KafkaDrainOperator, StageToWarehouseOperator
from spotify_pipeline.triggers.records_waiting import RecordsWaitingTrigger

# The topic it watches: the environment's SPOTIFY_INGEST_TOPIC, read when the DAG file is parsed
# (the watcher's trigger is built then), or spotify_events.
TOPIC = ingest_topic()
# A run when this many records wait (about 5 s of a 2,000 events/s stream) ...
MIN_LAG = 10_000
# ... or when the oldest waiting record is this old: what bounds freshness on a slow stream.
MAX_AGE_S = 10.0
# A drain takes what arrived before it started, for at most this long, so that a large backlog
# is staged (and visible in gold) in steps rather than all at the end.
DRAIN_MAX_SECONDS = 120
DRAIN_TASKS = 2
FALLBACK_CRON = "*/10 * * * *"

RECORDS_WAITING = Asset(
    name="spotify_records_waiting",
    uri=f"kafka://spotify/{TOPIC}/waiting",
    group="spotify",
    watchers=[
        AssetWatcher(
            name="spotify_records_waiting_watcher",
            trigger=RecordsWaitingTrigger(topic=TOPIC, min_lag=MIN_LAG, max_age_s=MAX_AGE_S, poke_interval=2),
        )
    ],
)

with DAG(
    dag_id="spotify_ingest",
    description="Kafka -> bronze lake -> warehouse, when records wait (AssetWatcher), or every 10 minutes",
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable(FALLBACK_CRON, timezone="UTC"), assets=[RECORDS_WAITING]),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=2,
    default_args=RETRY_DEFAULT_ARGS,
    tags=["spotify", "medallion", "ingest", "continuous"],
    doc_md=__doc__,
) as dag:

    # Each mapped drain asks the broker for its share of the partitions when it starts: no
    # planning task ahead of it (a task start is ~3 s of every record's way to gold here).
    drain = KafkaDrainOperator.partial(
        task_id="drain",
        topic=TOPIC,
        lake_url=LAKE_URL_TEMPLATE,
        max_seconds=DRAIN_MAX_SECONDS,
        outlets=[BRONZE_LAKE],
    ).expand(partition_share=[[i, DRAIN_TASKS] for i in range(DRAIN_TASKS)])
    stage = StageToWarehouseOperator(
        task_id="stage",
        lake_url=LAKE_URL_TEMPLATE,
        pool=DUCKDB_POOL,
        outlets=[STAGED_BRONZE],
        # A share with no partition (more drain tasks than partitions) is skipped, not failed.
        trigger_rule="none_failed",
    )

    drain >> stage
