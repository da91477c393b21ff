"""Transform: dbt builds silver and gold in the warehouse, each time new bronze is staged.

Scheduled on the ``spotify_staged_bronze`` Asset that ``spotify_pipeline``'s stage task updates,
not on time. The warehouse is the one that stage loaded (the asset event says which), or the
``warehouse`` param of a manual run. Gold models are Assets too (``spotify_gold_<model>``), for
whatever reads them next.

Each build tests what it built; the data tests whose cost grows with the whole history (tag
``whole_history``) run in the hourly ``spotify_gold_audit``, so a build stays as fast on day
thirty as on day one.

One task, so that a stream's next build starts as soon as this one ends: the dbt target comes
from the triggering asset events inside it, and the dashboard's HTML export is a DAG of its own
(``spotify_dashboard_export``, on the gold Assets).

Variable (optional): ``spotify_dbt_project_dir`` (default: the ``dbt/`` folder next to ``dags/``).
"""

from __future__ import annotations

from pathlib import Path

import pendulum
from airflow.sdk import DAG, Param

from spotify_pipeline.assets import STAGED_BRONZE, dbt_gold_assets
from spotify_pipeline.hooks.duckdb import DUCKDB_POOL
from spotify_pipeline.retries import RETRY_DEFAULT_ARGS
from spotify_pipeline.operators import DbtBuildOperator

DBT_PROJECT_DIR = str(Path(__file__).resolve().parent.parent / "dbt")

with DAG(
    dag_id="spotify_transform",
    description="dbt silver and gold, on each staged bronze load",
    schedule=[STAGED_BRONZE],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=RETRY_DEFAULT_ARGS,
    tags=["spotify", "medallion", "dbt"],
    params={
        "warehouse": Param("", type="string", enum=["", "duckdb", "snowflake"], title="Warehouse",
                           description="Empty: the warehouse the triggering stage loaded (duckdb when run by hand)."),
        "full_refresh": Param(False, type="boolean", title="Full refresh",
                              description="Rebuild the incremental models from all of bronze (dbt --full-refresh). "
                                          "Off: incremental, what the asset-triggered runs do."),
        "unit_tests": Param(False, type="boolean", title="Unit tests",
                            description="Run dbt's unit tests too. They check the models' SQL on fixed inputs, "
                                        "not the data, so they belong in CI and development (dbt's own advice); "
                                        "off, a build saves ~1 s and each run of the stream is fresher."),
        "whole_history_tests": Param(False, type="boolean", title="Whole-history tests",
                                     description="Run the data tests tagged whole_history too (uniqueness of every event_id, "
                                                 "gold equal to silver, every bronze event accounted for). Their cost grows "
                                                 "with the tables (see spotify_gold_audit). Off, the hourly "
                                                 "spotify_gold_audit runs them; a full refresh always does."),
    },
    doc_md=__doc__,
) as dag:

    dbt_build = DbtBuildOperator(
        task_id="dbt_build",
        project_dir="{{ var.value.get('spotify_dbt_project_dir', '" + DBT_PROJECT_DIR + "') }}",
        # Empty: the warehouse of the stage that triggered the run (the asset event says which).
        target="{{ params.warehouse }}",
        full_refresh="{{ params.full_refresh }}",
        exclude="{{ ('' if params.unit_tests else 'test_type:unit') ~ "
                "('' if params.whole_history_tests or params.full_refresh else ' tag:whole_history') }}",
        pool=DUCKDB_POOL,
        # One Asset per model in dbt/models/marts (read from the files, no dbt parse).
        outlets=dbt_gold_assets(DBT_PROJECT_DIR),
    )
