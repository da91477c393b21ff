"""DbtBuildOperator against a tiny real dbt project and a real DuckDB file (no mocks of dbt), the
gold assets it declares, and the cosmos example DAG rendering the real project."""

from __future__ import annotations

import json
import os
from pathlib import Path

import duckdb
import pytest

from spotify_pipeline.assets import dbt_gold_assets, gold_model_names
from spotify_pipeline.operators.dbt import DUCKDB_POOL, DbtBuildFailed, DbtBuildOperator

ROOT = Path(__file__).resolve().parents[3]

TINY = {
    "dbt_project.yml": """
name: tiny
version: "1.0"
config-version: 2
profile: tiny
vars:
  break_test: false
models:
  tiny:
    staging:
      +schema: silver
      +materialized: view
    marts:
      +schema: gold
      +materialized: table
""",
    "profiles.yml": """
tiny:
  target: duckdb
  outputs:
    duckdb:
      type: duckdb
      path: "{{ env_var('SPOTIFY_DUCKDB_PATH') }}"
      threads: 1
""",
    "macros/generate_schema_name.sql": """
{% macro generate_schema_name(custom_schema_name, node) -%}
{%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}
""",
    "models/staging/stg_numbers.sql": "select * from range(1, 6) t(n)",
    "models/marts/gold_numbers.sql": "select n, n * n as square from {{ ref('stg_numbers') }}",
    "models/marts/gold_events.sql": """
{{ config(materialized='incremental', unique_key='n') }}
select n, 'batch-' || n as batch from {{ ref('stg_numbers') }}
{% if is_incremental() %} where n > (select max(n) from {{ this }}) {% endif %}
""",
    "models/marts/_marts.yml": """
version: 2
models:
  - name: gold_numbers
    columns:
      - name: n
        data_tests: [unique, not_null]
""",
    "tests/assert_squares_are_right.sql": """
-- fails (5 rows) when var break_test is true
select * from {{ ref('gold_numbers') }}
where square <> n * n {% if var('break_test') %} or true {% endif %}
""",
}


@pytest.fixture
def tiny_project(tmp_path, monkeypatch):
    project = tmp_path / "tiny"
    for rel, text in TINY.items():
        (project / rel).parent.mkdir(parents=True, exist_ok=True)
        (project / rel).write_text(text.lstrip())
    db = tmp_path / "wh" / "tiny.duckdb"
    db.parent.mkdir()
    monkeypatch.setenv("AIRFLOW_CONN_DUCKDB_TINY", json.dumps({"conn_type": "duckdb", "extra": {"path": str(db)}}))
    monkeypatch.delenv("SPOTIFY_DUCKDB_PATH", raising=False)
    return project, db


def _op(project: Path, **kwargs) -> DbtBuildOperator:
    return DbtBuildOperator(task_id="dbt", project_dir=str(project), duckdb_conn_id="duckdb_tiny", **kwargs)


def test_builds_in_process_logs_one_line_per_node_and_returns_results(tiny_project, capfd):
    project, db = tiny_project
    op = _op(project)
    out = op.execute(context={})
    logged = capfd.readouterr().out
    assert out["success"] and out["command"] == "build" and out["target"] == "duckdb"
    by_id = {n["unique_id"]: n for n in out["nodes"]}
    assert by_id["model.tiny.gold_numbers"]["status"] == "success"
    assert by_id["model.tiny.gold_numbers"]["rows"] == 5
    assert by_id["model.tiny.gold_events"]["rows"] == 5
    assert by_id["test.tiny.assert_squares_are_right"]["status"] == "pass"
    assert out["counts"] == {"success": 3, "pass": 3}
    # one log line per node, as it finished
    lines = [line for line in logged.splitlines() if "] dbt " in line or " dbt " in line]
    for uid, node in by_id.items():
        mine = [line for line in lines if f" {uid} " in line]
        assert len(mine) == 1, (uid, lines)
        assert node["status"] in mine[0]
        if node["resource_type"] == "model" and node["name"] != "stg_numbers":
            assert "rows=5" in mine[0]
    # the profile got the connection's path, and the process env is left as it was
    assert "SPOTIFY_DUCKDB_PATH" not in os.environ
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("select sum(square) from gold.gold_numbers").fetchone()[0] == 55
    json.dumps(out)  # XCom-serializable


def test_fails_naming_the_failing_tests(tiny_project):
    project, _ = tiny_project
    op = _op(project, vars={"break_test": True})
    with pytest.raises(DbtBuildFailed) as err:
        op.execute(context={})
    assert "test.tiny.assert_squares_are_right" in str(err.value)
    assert "5 failing rows" in str(err.value)
    assert err.value.failed == ["test.tiny.assert_squares_are_right"]
    assert "model.tiny.gold_numbers" not in err.value.failed


def test_select_exclude_and_full_refresh_reach_dbt(tiny_project):
    project, db = tiny_project
    out = _op(project, select="+gold_events", exclude="test_type:data").execute(context={})
    assert {n["unique_id"] for n in out["nodes"]} == {"model.tiny.stg_numbers", "model.tiny.gold_events"}
    with duckdb.connect(str(db)) as con:
        con.execute("insert into gold.gold_events values (99, 'stray')")
    # incremental: the stray row stays; full refresh rebuilds from scratch
    _op(project, select="gold_events").execute(context={})
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("select count(*) from gold.gold_events").fetchone()[0] == 6
    _op(project, select="gold_events", full_refresh="true").execute(context={})
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("select count(*) from gold.gold_events").fetchone()[0] == 5


def test_templated_fields_render_from_params(tiny_project):
    from airflow.sdk import DAG

    project, _ = tiny_project
    with DAG("t", schedule=None, render_template_as_native_obj=True) as dag:
        op = DbtBuildOperator(
            task_id="dbt", project_dir="{{ params.dir }}", target="{{ params.target }}",
            select="{{ params.select }}", exclude="{{ params.exclude }}", vars={"as_of": "{{ params.as_of }}"},
            full_refresh="{{ params.full }}",
        )
    assert set(op.template_fields) >= {"select", "exclude", "vars", "target", "full_refresh", "project_dir"}
    params = {"dir": str(project), "target": "duckdb", "select": "tag:a tag:b", "exclude": "x",
              "as_of": "2026-01-01", "full": True}
    op.render_template_fields({"params": params}, jinja_env=dag.get_template_env())
    args = op.dbt_args("/t", "/l")
    assert args[:3] == ["build", "--project-dir", str(project)]
    assert args[args.index("--select") + 1:args.index("--select") + 3] == ["tag:a", "tag:b"]
    assert args[args.index("--exclude") + 1] == "x"
    assert json.loads(args[args.index("--vars") + 1]) == {"as_of": "2026-01-01"}
    assert "--full-refresh" in args and args[args.index("--target") + 1] == "duckdb"
    # a templated target may be DuckDB: the pool is the DuckDB one unless told otherwise
    assert op.pool == DUCKDB_POOL


def test_pool_and_gold_assets_are_set_at_parse_time(tiny_project):
    project, _ = tiny_project
    op = _op(project)
    assert op.pool == DUCKDB_POOL
    assert [a.uri for a in op.outlets] == ["spotify://warehouse/gold/gold_events", "spotify://warehouse/gold/gold_numbers"]
    assert [a.name for a in op.outlets] == ["spotify_gold_gold_events", "spotify_gold_gold_numbers"]
    snow = DbtBuildOperator(task_id="s", project_dir=str(project), target="snowflake",
                            asset_uri_prefix="snowflake://acct/ANALYTICS")
    assert snow.pool != DUCKDB_POOL
    assert snow.outlets[0].uri == "snowflake://acct/ANALYTICS/gold/gold_events"
    mine = DbtBuildOperator(task_id="m", project_dir=str(project), pool="other", outlets=[])
    assert mine.pool == "other"
    templated = DbtBuildOperator(task_id="x", project_dir="{{ var.value.dir }}")
    assert templated.outlets == []  # unknown until run time: pass outlets=dbt_gold_assets(path)


def test_asset_events_carry_each_gold_models_result(tiny_project):
    from airflow.sdk.execution_time.context import OutletEventAccessors

    project, _ = tiny_project
    op = _op(project, select="+gold_numbers")
    events = OutletEventAccessors()
    op.execute(context={"outlet_events": events})
    numbers, evts = op.outlets[1], op.outlets[0]
    assert events[numbers].extra == {"dbt_model": "gold_numbers", "built": True, "status": "success", "rows": 5,
                                     "execution_time_s": events[numbers].extra["execution_time_s"]}
    assert events[evts].extra == {"dbt_model": "gold_events", "built": False}


def test_an_empty_target_is_the_warehouse_of_the_latest_triggering_stage(tiny_project):
    from datetime import datetime, timezone
    from types import SimpleNamespace

    from airflow.sdk.execution_time.context import OutletEventAccessors

    from spotify_pipeline.operators.dbt import target_of_asset_events

    def event(hour, extra):
        return SimpleNamespace(timestamp=datetime(2026, 12, 6, hour, tzinfo=timezone.utc), extra=extra)

    events = {"staged": [event(9, {"warehouse": "snowflake"}), event(11, {"warehouse": "duckdb"}), event(12, {})]}
    assert target_of_asset_events(events) == "duckdb"  # the latest that names one; the 12:00 event names none
    assert target_of_asset_events({"staged": [event(9, {"warehouse": "snowflake"})]}) == "snowflake"
    assert target_of_asset_events(None) == target_of_asset_events({"staged": [event(9, {})]}) == "duckdb"
    # In the operator: an empty target (the transform DAG's default param) builds on that warehouse.
    project, _ = tiny_project
    op = _op(project, target="")
    assert op.pool == DUCKDB_POOL  # may be DuckDB
    op.execute(context={"outlet_events": OutletEventAccessors(), "triggering_asset_events": events})
    assert op.target == "duckdb"
    # A stage that loaded Snowflake makes it a Snowflake build (the tiny profile has no such target).
    op = _op(project, target="")
    with pytest.raises(DbtBuildFailed, match="snowflake"):
        op.execute(context={"outlet_events": OutletEventAccessors(),
                            "triggering_asset_events": {"staged": [event(9, {"warehouse": "snowflake"})]}})
    assert op.target == "snowflake"


def test_the_real_projects_gold_models_cover_the_contract():
    contract = (
        "fct_user_activity fct_listening_sessions dim_songs dim_artists dim_users kpi_daily_engagement "
        "kpi_song_skip_rates kpi_artist_popularity kpi_top_songs kpi_genre_distribution kpi_new_release_trending "
        "kpi_country_activity kpi_listening_hours_local kpi_device_by_region"
    ).split()
    names = gold_model_names(ROOT / "dbt")
    assert set(contract) <= set(names)
    mine = dbt_gold_assets(ROOT / "dbt")
    assert {a.uri for a in mine} >= {f"spotify://warehouse/gold/{m}" for m in contract}
    # the same assets the DAGs declare (spotify_pipeline.assets), so either list can be the outlets
    from spotify_pipeline.assets import GOLD_ASSETS

    assert {(a.name, a.uri) for a in GOLD_ASSETS} <= {(a.name, a.uri) for a in mine}


def test_snowflake_target_takes_its_settings_from_the_airflow_connection(tiny_project, monkeypatch):
    project, _ = tiny_project
    monkeypatch.setenv("AIRFLOW_CONN_SNOW", json.dumps({
        "conn_type": "snowflake", "login": "ann", "password": "pw", "schema": "PUBLIC",
        "extra": {"account": "xy123", "warehouse": "WH", "database": "ANALYTICS", "role": "R"},
    }))
    op = DbtBuildOperator(task_id="s", project_dir=str(project), target="snowflake", snowflake_conn_id="snow")
    assert op._snowflake_env() == {
        "SNOWFLAKE_ACCOUNT": "xy123", "SNOWFLAKE_USER": "ann", "SNOWFLAKE_PASSWORD": "pw", "SNOWFLAKE_ROLE": "R",
        "SNOWFLAKE_WAREHOUSE": "WH", "SNOWFLAKE_DATABASE": "ANALYTICS", "SNOWFLAKE_SCHEMA": "PUBLIC",
    }
    assert DbtBuildOperator(task_id="n", project_dir=str(project), target="snowflake",
                            snowflake_conn_id="missing")._snowflake_env() == {}


def test_cosmos_renders_the_same_project(monkeypatch, tmp_path):
    import cosmos  # noqa: F401 - a declared dev dependency: failing to import it fails the test
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("SPOTIFY_DUCKDB_PATH", str(tmp_path / "unused.duckdb"))
    monkeypatch.setenv("SPOTIFY_DBT_PROJECT_DIR", str(ROOT / "dbt"))
    monkeypatch.setenv("AIRFLOW__COSMOS__ENABLE_CACHE", "False")
    bag = DagBag(dag_folder=str(ROOT / "python" / "spotify_pipeline" / "example_dags"))
    assert bag.import_errors == {}
    dag = bag.dags["spotify_dbt_cosmos"]
    ids = {t.task_id for t in dag.tasks}
    for model in ("stg_spotify__events", "fct_user_activity", "kpi_top_songs", "kpi_device_by_region"):
        assert f"{model}.run" in ids and f"{model}.test" in ids
    assert {"country_regions.seed", "snap_users.snapshot"} <= ids
    assert {t.pool for t in dag.tasks} == {DUCKDB_POOL}
    # dependencies follow dbt's: silver before gold
    assert "stg_spotify__events.run" in dag.get_task("fct_user_activity.run").upstream_list[0].task_id or any(
        t.task_id.startswith("stg_spotify__events") for t in dag.get_task("fct_user_activity.run").get_flat_relatives(upstream=True)
    )


def test_source_freshness_of_the_real_project_warns_and_errors_at_its_set_ages(tmp_path, monkeypatch):
    """The project's sources say how old bronze may be: the newest load (the pipeline) and the
    newest event (the source). 5 minutes passes, 20 warns (the task succeeds), 2 hours fails it."""
    from datetime import datetime, timedelta, timezone

    from spotify_pipeline.hooks.duckdb import DuckDBWarehouseHook

    db = tmp_path / "wh.duckdb"
    monkeypatch.setenv("AIRFLOW_CONN_DUCKDB_FRESH", json.dumps({"conn_type": "duckdb", "extra": {"path": str(db)}}))
    hook = DuckDBWarehouseHook("duckdb_fresh")
    with duckdb.connect(str(db)) as con:
        hook.ensure_tables(con)  # the stage's own DDL

    def aged(minutes: int) -> dict:
        at = datetime.now(timezone.utc) - timedelta(minutes=minutes)
        with duckdb.connect(str(db)) as con:
            con.execute("delete from bronze._loads; delete from bronze.spotify_events")
            con.execute("insert into bronze._loads (batch_id, table_name, lake_version, source_file, rows, loaded_at) "
                        "values ('b', 'events', 1, 'f', 1, ?)", [at])
            # One event at that time; every other required column a placeholder of its type.
            cols = con.execute("select column_name, data_type from information_schema.columns where table_schema = 'bronze' "
                               "and table_name = 'spotify_events' and is_nullable = 'NO'").fetchall()
            placeholder = {"VARCHAR": "'x'", "DATE": "current_date", "BLOB": "'x'::blob"}
            values = ["?" if c == "event_ts" else placeholder.get(t, "0" if "INT" in t else "now()") for c, t in cols]
            con.execute(f"insert into bronze.spotify_events ({', '.join(c for c, _ in cols)}) values ({', '.join(values)})",
                        [at.replace(tzinfo=None)])
        op = DbtBuildOperator(task_id="fresh", project_dir=str(ROOT / "dbt"), duckdb_conn_id="duckdb_fresh",
                              command="source freshness", select="source:bronze._loads source:bronze.spotify_events",
                              emit_gold_assets=False, target_path=str(tmp_path / "target"))
        return op.execute(context={})

    assert aged(5)["counts"] == {"pass": 2}
    assert aged(20)["counts"] == {"warn": 2}
    with pytest.raises(DbtBuildFailed) as err:
        aged(120)
    assert set(err.value.failed) == {"source.spotify.bronze._loads", "source.spotify.bronze.spotify_events"}


def test_the_next_build_parses_partially_from_the_kept_parse_file(tiny_project, monkeypatch, tmp_path):
    """Each build's target/ is temporary; dbt's partial-parse file is kept between builds, so the
    next one re-parses only what changed (about 2.5 s of a build of the real project)."""
    import dbt.cli.main

    from spotify_pipeline.operators import dbt as dbt_operator

    project, _ = tiny_project
    monkeypatch.setattr(dbt_operator, "PARTIAL_PARSE_CACHE", str(tmp_path / "parse-cache"))
    seen: list[str] = []

    class Watched(dbt.cli.main.dbtRunner):
        def __init__(self, callbacks=None, **kwargs):
            super().__init__(callbacks=[*(callbacks or []), lambda e: seen.append(e.info.name)], **kwargs)

    monkeypatch.setattr(dbt.cli.main, "dbtRunner", Watched)
    _op(project).execute(context={})
    assert "PartialParsingEnabled" not in seen
    assert len(list((tmp_path / "parse-cache").glob("*.msgpack"))) == 1
    seen.clear()
    _op(project).execute(context={})
    assert "PartialParsingEnabled" in seen, sorted(set(seen))
    # a changed project is parsed again where it changed, and still builds
    model = project / "models" / "marts" / "gold_numbers.sql"
    model.write_text(model.read_text() + "\n-- changed\n")
    assert _op(project).execute(context={})["success"]
