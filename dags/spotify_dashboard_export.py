"""Dashboard export: the dashboard as one offline HTML file in the lake, after each gold build.

Scheduled on the gold Asset ``spotify_gold_kpi_daily_engagement``, which every successful
``spotify_transform`` run updates. It writes ``dashboards/spotify/<run time>.html`` and
``dashboards/spotify/latest.html`` (``DashboardExportOperator``).

It is a DAG of its own, not a task after the build, so that a stream's next transform does not
wait for it: the transform runs one at a time, and an export behind each build was a task start
and a read (~5 s) of every record's way to gold. It reads gold as any BI tool does: read-only,
waiting out a writer that holds the DuckDB file, so it takes no slot of the ``spotify_duckdb`` pool.
Runs that queue while one exports are one run.

Connections: ``aws_default`` (the lake), ``duckdb_default`` (the warehouse). Variable (optional):
``spotify_lake_url``.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from spotify_pipeline.assets import gold_asset
from spotify_pipeline.hooks.lake import LAKE_URL_TEMPLATE
from spotify_pipeline.operators import DashboardExportOperator
from spotify_pipeline.retries import RETRY_DEFAULT_ARGS

with DAG(
    dag_id="spotify_dashboard_export",
    description="The dashboard as one offline HTML file in the lake, after each gold build",
    schedule=[gold_asset("kpi_daily_engagement")],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=RETRY_DEFAULT_ARGS,
    tags=["spotify", "dashboard"],
    doc_md=__doc__,
) as dag:
    DashboardExportOperator(task_id="export_dashboard", lake_url=LAKE_URL_TEMPLATE)
