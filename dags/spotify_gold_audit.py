"""Gold audit: the data tests over the whole history, every hour.

``spotify_transform`` builds gold on each staged load and tests what it built. The data tests
tagged ``whole_history`` in ``dbt/`` read every row instead: every event_id unique in silver and
gold, gold equal to silver, every bronze event accounted for once, every activity row in a
session. They grow with the tables: at 11.3 M events a build with them took 34.4 s, without
them 20.7 s (``bench/dbt_build.py``, medians of 3 interleaved repeats). So they run here, once
an hour, not in every build (a full refresh of the transform runs them too).
A failure fails this DAG's run, with dbt's failing rows in the task log.

It takes the ``spotify_duckdb`` pool's slot like a build: the embedded warehouse has one writer,
and a stream's builds wait out the audit (~15 s an hour at 11 M events).

Variable (optional): ``spotify_dbt_project_dir`` (default: the ``dbt/`` folder next to ``dags/``).
"""

from __future__ import annotations

from pathlib import Path

import pendulum
from airflow.sdk import DAG, Param

from spotify_pipeline.hooks.duckdb import DUCKDB_POOL
from spotify_pipeline.operators import DbtBuildOperator
from spotify_pipeline.retries import RETRY_DEFAULT_ARGS

DBT_PROJECT_DIR = str(Path(__file__).resolve().parent.parent / "dbt")

with DAG(
    dag_id="spotify_gold_audit",
    description="dbt's whole-history data tests on silver and gold, hourly",
    schedule="@hourly",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=RETRY_DEFAULT_ARGS,
    tags=["spotify", "medallion", "dbt"],
    params={
        "warehouse": Param("duckdb", type="string", enum=["duckdb", "snowflake"], title="Warehouse"),
    },
    doc_md=__doc__,
) as dag:
    DbtBuildOperator(
        task_id="whole_history_tests",
        project_dir="{{ var.value.get('spotify_dbt_project_dir', '" + DBT_PROJECT_DIR + "') }}",
        target="{{ params.warehouse }}",
        # Tests only: dbt build runs the selected nodes, and only tests carry the tag.
        select="tag:whole_history",
        pool=DUCKDB_POOL,
    )
