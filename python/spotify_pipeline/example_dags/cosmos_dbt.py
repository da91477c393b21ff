"""The same dbt project rendered by astronomer-cosmos: one Airflow task group per dbt model
(run + its tests), seeds and snapshots as their own tasks, in dbt's dependency order.

The first-class way in this project is ``DbtBuildOperator`` (one task, ``dbt build``, assets for
the gold tables); this DAG shows that cosmos renders the very same project, for teams that want a
task per model. Copy it into your dags folder, or point ``dags_folder`` here.

Settings (environment):
- ``SPOTIFY_DBT_PROJECT_DIR``: the dbt project (default: ``dbt/`` of a source checkout);
- ``SPOTIFY_DUCKDB_PATH``: the warehouse file the profile's ``duckdb`` target uses
  (scripts/airflow-env.sh exports it);

Every task runs in the one-slot pool ``spotify_duckdb``: DuckDB allows one writing process.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

# cosmos lists the project with the `dbt` on PATH; in a virtualenv that is not activated, use the
# one installed next to this interpreter.
if shutil.which("dbt") is None and Path(sys.executable).with_name("dbt").exists():
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"

import pendulum
from cosmos import DbtDag, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import ExecutionMode, InvocationMode, LoadMode
from cosmos.dbt.executable import get_system_dbt

_SOURCE_CHECKOUT_DBT = Path(__file__).resolve().parents[3] / "dbt"
PROJECT_DIR = Path(os.environ.get("SPOTIFY_DBT_PROJECT_DIR", _SOURCE_CHECKOUT_DBT))


if (PROJECT_DIR / "dbt_project.yml").exists():
    spotify_dbt_cosmos = DbtDag(
        dag_id="spotify_dbt_cosmos",
        description="The spotify dbt project (silver, gold, tests) rendered by astronomer-cosmos",
        project_config=ProjectConfig(
            dbt_project_path=PROJECT_DIR,
            env_vars={"SPOTIFY_DUCKDB_PATH": os.environ.get("SPOTIFY_DUCKDB_PATH", "")},
        ),
        profile_config=ProfileConfig(
            profile_name="spotify",
            target_name="duckdb",
            profiles_yml_filepath=PROJECT_DIR / "profiles.yml",
        ),
        execution_config=ExecutionConfig(
            execution_mode=ExecutionMode.LOCAL,
            # tasks run dbt in-process (dbtRunner); listing the project at parse time runs `dbt ls`
            invocation_mode=InvocationMode.DBT_RUNNER,
        ),
        render_config=RenderConfig(load_method=LoadMode.DBT_LS, dbt_executable_path=get_system_dbt()),
        operator_args={"pool": "spotify_duckdb", "install_deps": False},
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        tags=["spotify", "dbt", "cosmos", "example"],
        doc_md=__doc__,
    )
