"""The Airflow face: provider and plugin registration, the DAG, hooks, operator settings."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from spotify_pipeline import _core
from spotify_pipeline.hooks.duckdb import DuckDBWarehouseHook, identifier
from spotify_pipeline.hooks.kafka import SpotifyKafkaHook
from spotify_pipeline.hooks.lake import LAKE_URL_TEMPLATE, LakeHook
from spotify_pipeline.simulation import sim_config
from spotify_pipeline.progress import format_progress
from spotify_pipeline.provider import get_provider_info

ROOT = Path(__file__).resolve().parents[3]


def test_registered_as_provider_and_plugin():
    providers = {e.value for e in entry_points(group="apache_airflow_provider")}
    assert "spotify_pipeline.provider:get_provider_info" in providers
    plugins = {e.name: e for e in entry_points(group="airflow.plugins")}
    assert plugins["spotify_pipeline"].load().name == "spotify_pipeline"
    info = get_provider_info()
    assert info["package-name"] == "spotify-pipeline"
    assert info["connection-types"][0]["hook-class-name"].endswith("DuckDBWarehouseHook")


def test_ingest_dag_feeds_the_transform_dag_through_an_asset():
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk.definitions.param import ParamsDict

    from spotify_pipeline.assets import GOLD_ASSETS, STAGED_BRONZE

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    dag, transform = bag.dags["spotify_pipeline"], bag.dags["spotify_transform"]
    order = [t.task_id for t in dag.topological_sort()]
    assert order == ["produce", "wait_for_records", "plan_drain", "drain", "wait_for_batches", "stage"]
    assert dag.get_task("wait_for_records").deferrable and dag.get_task("wait_for_batches").deferrable
    assert dag.get_task("stage").outlets == [STAGED_BRONZE]
    # Scheduled on the staged-bronze Asset, not on time; dbt shares the DuckDB pool with stage.
    assert list(transform.timetable.asset_condition.objects) == [STAGED_BRONZE]
    # One task: a stream's next build waits for no other (the target comes from the asset events).
    assert [t.task_id for t in transform.topological_sort()] == ["dbt_build"]
    assert transform.get_task("dbt_build").target == "{{ params.warehouse }}"
    assert dag.get_task("stage").pool == transform.get_task("dbt_build").pool == "spotify_duckdb"
    # The HTML export follows each gold build in a DAG of its own, outside the pool (it waits out writers).
    export = bag.dags["spotify_dashboard_export"]
    assert [t.task_id for t in export.topological_sort()] == ["export_dashboard"]
    (gold,) = export.timetable.asset_condition.objects
    assert gold in transform.get_task("dbt_build").outlets
    assert export.get_task("export_dashboard").pool == "default_pool" and export.max_active_runs == 1
    # A stream's build leaves the whole-history tests to the hourly audit; a full refresh runs them.
    import jinja2

    def excluded(**params):
        p = {"unit_tests": False, "whole_history_tests": False, "full_refresh": False, **params}
        return jinja2.Template(transform.get_task("dbt_build").exclude).render(params=p).split()

    assert excluded() == ["test_type:unit", "tag:whole_history"]
    assert excluded(full_refresh=True) == excluded(whole_history_tests=True) == ["test_type:unit"]
    assert excluded(unit_tests=True, whole_history_tests=True) == []
    audit = bag.dags["spotify_gold_audit"]
    assert (audit.timetable.expression, audit.max_active_runs) == ("0 * * * *", 1)
    (tests,) = audit.tasks
    assert tests.select == "tag:whole_history" and tests.pool == "spotify_duckdb" and not tests.outlets
    # Every gold table of the contract (what the dashboard reads) is an Asset of the build.
    assert set(GOLD_ASSETS) <= set(transform.get_task("dbt_build").outlets)

    # The params form: every field described and range-checked.
    form = {"events", "seed", "rate_per_s", "speedup", "start", "late_rate", "duplicate_rate", "malformed_rate", "warehouse", "topic", "drain_tasks"}
    assert form == set(dag.params)
    for name in form:
        assert dag.params.get_param(name).description, name
    good = {"events": 5, "seed": 1, "start": "2026-11-01T00:00:00Z", "warehouse": "snowflake", "late_rate": 0.1}
    ParamsDict({**dag.params, **good}).validate()
    for bad in ({"events": 0}, {"late_rate": 0.9}, {"warehouse": "oracle"}, {"start": "yesterday"}, {"drain_tasks": 65}, {"speedup": -1}):
        params = ParamsDict(dag.params)
        with pytest.raises(Exception):
            params.update(bad)
            params.validate()


def test_continuous_ingest_dag_runs_on_records_waiting_and_feeds_the_transform():
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk import AssetOrTimeSchedule

    from spotify_pipeline.assets import STAGED_BRONZE
    from spotify_pipeline.triggers.records_waiting import RecordsWaitingTrigger

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert not [f for f in bag.import_errors if f.endswith("spotify_ingest.py")], bag.import_errors
    dag = bag.dags["spotify_ingest"]
    # No planning task: each mapped drain takes its share of the partitions when it starts.
    assert [t.task_id for t in dag.topological_sort()] == ["drain", "stage"]
    assert dag.get_task("stage").outlets == [STAGED_BRONZE] and dag.get_task("stage").pool == "spotify_duckdb"
    assert dag.get_task("stage").trigger_rule == "none_failed"  # an empty share is skipped
    assert dag.get_task("drain").partial_kwargs["max_seconds"] > 0
    shares = dag.get_task("drain").expand_input.value["partition_share"]
    assert shares == [[i, len(shares)] for i in range(len(shares))] and len(shares) >= 2
    # Watched: the asset's watcher fires on records waiting; a cron covers a missing triggerer.
    assert isinstance(dag.timetable, AssetOrTimeSchedule) and dag.timetable.timetable.expression == "*/10 * * * *"
    (asset,) = dag.timetable.asset_condition.objects
    (watcher,) = asset.watchers
    assert isinstance(watcher.trigger, RecordsWaitingTrigger) and watcher.trigger.lake_url is None
    assert dag.max_active_runs >= 2  # overlapping runs are safe, and a slow one does not hold back the next


def test_maintenance_dag_compacts_then_vacuums_every_hour_with_the_guard_on():
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk.definitions.param import ParamsDict

    from spotify_pipeline.operators import LakeCompactOperator, LakeVacuumOperator

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert not [f for f in bag.import_errors if f.endswith("spotify_lake_maintenance.py")], bag.import_errors
    dag = bag.dags["spotify_lake_maintenance"]
    assert (dag.schedule, dag.timetable.expression, dag.catchup, dag.max_active_runs) == ("@hourly", "0 * * * *", False, 1)
    assert [t.task_id for t in dag.topological_sort()] == ["compact", "vacuum"]
    compact, vacuum = dag.get_task("compact"), dag.get_task("vacuum")
    assert isinstance(compact, LakeCompactOperator) and isinstance(vacuum, LakeVacuumOperator)
    assert compact.lake_url == vacuum.lake_url == "{{ var.value.get('spotify_lake_url', 's3://spotify-lake') }}" == LAKE_URL_TEMPLATE
    assert {"target_file_bytes", "closed_after_s"} <= set(compact.template_fields)
    assert {"retention_hours", "dry_run"} <= set(vacuum.template_fields)
    assert set(dag.params) == {"target_file_bytes", "retention_hours"}
    for name in dag.params:
        assert dag.params.get_param(name).description, name
    assert "dataChange" in dag.doc_md and "guard" in dag.doc_md
    ParamsDict({**dag.params, "target_file_bytes": 1 << 20, "retention_hours": 1}).validate()
    # Under 1 h of retention is the core's guard; the form refuses it before the core has to.
    for bad in ({"retention_hours": 0}, {"target_file_bytes": 1000}):
        params = ParamsDict(dag.params)
        with pytest.raises(Exception):
            params.update(bad)
            params.validate()
    # The guard cannot be turned off through the operator.
    with pytest.raises(TypeError):
        LakeVacuumOperator(task_id="v", lake_url="s3://b", enforce_retention_guard=False)


def test_identifiers_are_validated():
    assert identifier("bronze") == "bronze"
    for bad in ["", "1abc", "x; drop table y", "a.b", "a-b", 'x"']:
        with pytest.raises(ValueError):
            identifier(bad)
    with pytest.raises(ValueError):
        DuckDBWarehouseHook(schema="bronze; --")


def test_hooks_read_connections(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_K", '{"conn_type": "kafka", "extra": {"bootstrap.servers": "h:1", "linger.ms": 5}}')
    monkeypatch.setenv("AIRFLOW_CONN_KBAD", '{"conn_type": "kafka", "extra": {}}')
    monkeypatch.setenv("AIRFLOW_CONN_S3", '{"conn_type": "aws", "login": "key-id", "password": "secret-key", "extra": {"endpoint_url": "http://m:9000"}}')
    monkeypatch.setenv("AIRFLOW_CONN_DB", '{"conn_type": "duckdb", "extra": {"path": "/x/y.duckdb"}}')
    assert SpotifyKafkaHook("k").kafka_config("t") == {
        "client": {"bootstrap.servers": "h:1", "linger.ms": "5"}, "topic": "t", "timeout_s": 30,
    }
    with pytest.raises(ValueError, match="bootstrap.servers"):
        SpotifyKafkaHook("kbad").kafka_config("t")
    opts = LakeHook("s3://b/p", "s3").lake_config()["options"]
    assert opts == {
        "aws_access_key_id": "key-id", "aws_secret_access_key": "secret-key",
        "aws_endpoint": "http://m:9000", "aws_allow_http": "true", "aws_region": "us-east-1",
    }
    assert LakeHook("file:///tmp/lake", None).lake_config() == {"url": "file:///tmp/lake", "options": {}}
    assert DuckDBWarehouseHook("db").path == "/x/y.duckdb"


def test_simulation_settings():
    now = datetime(2026, 3, 1, 12, 30, 45, tzinfo=timezone.utc)
    assert sim_config(start="2026-01-15T00:00:00Z", now=now)["start_ms"] == 1_768_435_200_000
    assert sim_config(start="2026-01-15T00:00:00", now=now)["start_ms"] == 1_768_435_200_000
    # Without a start, the events end just before now (never after: they would be invalid).
    cfg = sim_config(events=100_000, now=now)
    last = max(datetime.fromisoformat(json.loads(r)["event_ts"].replace("Z", "+00:00")) for _, r in _core.simulate(cfg, 100_000))
    assert now - timedelta(hours=6) < last <= now  # the last session can end in a quiet hour
    assert now.timestamp() * 1000 - cfg["start_ms"] > 86_400_000
    cfg = sim_config(faults={"duplicate_rate": "0.05", "late_rate": None}, now=now)
    # The core's defaults (every rate 0, late by up to 2 h), overridden where set.
    assert cfg["faults"] == {"max_late_ms": 7_200_000, "duplicate_rate": 0.05, "late_rate": 0.0, "malformed_rate": 0.0}
    assert {k: v for k, v in cfg.items() if k not in ("faults", "start_ms")} == {k: v for k, v in _core.default_sim_config().items() if k not in ("faults", "start_ms")}
    with pytest.raises(ValueError, match="unknown fault"):
        sim_config(faults={"lose_rate": 0.1})


def test_partition_sets_and_merged_summaries():
    from spotify_pipeline.operators.drain import merge_drain_summaries, partition_sets
    from spotify_pipeline.triggers.kafka_lag import lag_reached

    assert partition_sets([0, 1, 2, 3, 4], 3) == [[0, 3], [1, 4], [2]]
    assert partition_sets([0, 1], 4) == [[0], [1]]
    with pytest.raises(ValueError):
        partition_sets([0], 0)
    part = lambda p, rows, reasons: {  # noqa: E731
        "topic": "t", "rows": rows, "quarantined": sum(reasons.values()), "quarantined_by_reason": reasons,
        "batches": [{"partition": p}], "partitions": [{"partition": p}], "files_total": 2, "files": ["a", "b"],
        "bytes": 10, "warnings": [], "lost_to_retention": 0, "commits": 3, "table": "s3://b/bronze/t", "quarantine_table": "s3://b/bronze/t_quarantine",
    }
    merged = merge_drain_summaries([part(1, 5, {"not_utf8": 1}), part(0, 7, {"not_utf8": 2, "oversized": 1})])
    assert (merged["rows"], merged["quarantined"], merged["files_total"], merged["commits"]) == (12, 4, 4, 6)
    assert merged["quarantined_by_reason"] == {"not_utf8": 3, "oversized": 1}
    assert [p["partition"] for p in merged["partitions"]] == [0, 1]
    # Lag: by count, or by the age of the oldest waiting record; never with nothing waiting.
    assert lag_reached({"lag": 10, "oldest_undrained_ms": 0}, 10, None)
    assert not lag_reached({"lag": 9, "oldest_undrained_ms": 1_000}, 10, None)
    assert lag_reached({"lag": 9, "oldest_undrained_ms": 1_000}, 10, 60, now_ms=61_000)
    assert not lag_reached({"lag": 9, "oldest_undrained_ms": 1_000}, 10, 60, now_ms=59_000)
    assert not lag_reached({"lag": 0, "oldest_undrained_ms": None}, 0, 0)
    # ... or with this run's records drained by another run: only when every partition is past them.
    report = {"lag": 0, "oldest_undrained_ms": None, "partitions": [{"partition": 0, "next_offset": 10}, {"partition": 1, "next_offset": 5}]}
    assert lag_reached(report, 1, None, produced=[[0, 9], [1, 4]])
    assert not lag_reached(report, 1, None, produced=[[0, 9], [1, 5]])
    assert not lag_reached(report, 1, None, produced=[[2, 0]])


def test_batch_sensor_waits_for_batches_or_for_its_drain_loaded():
    from spotify_pipeline.triggers.bronze_batch import batches_ready, drained_version

    summary = lambda *versions: {"batches": [{"version": v} for v in versions]}  # noqa: E731
    assert drained_version(None) is None and drained_version(summary()) == -1
    assert drained_version([summary(3, 7), summary(5)]) == 7
    pending = lambda batches, loaded: {"batches": batches, "loaded": {"events": loaded, "quarantine": -1}}  # noqa: E731
    assert batches_ready(pending(2, 0), 2) and not batches_ready(pending(1, 0), 2)
    assert batches_ready(pending(0, 7), 1, drained_through=7)
    assert not batches_ready(pending(0, 6), 1, drained_through=7)
    assert not batches_ready(None, 1, drained_through=-1)  # a busy DuckDB file: not yet known


def test_progress_lines():
    line = format_progress({"stage": "drain", "done": 500, "total": 1000, "bytes": 2_000_000, "rate_per_s": 250.0, "eta_s": 2.0})
    assert line == "drain: 500/1,000 (50.0%) at 250/s, 2.0 MB, ETA 2.0s"


def test_docker_compose_has_the_whole_stack_on_loopback_with_secrets_from_env(tmp_path):
    import shutil
    import subprocess

    import yaml

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = set(compose["services"])
    assert {"kafka", "minio", "postgres", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"} <= services
    assert compose["services"]["kafka"]["image"].startswith("apache/kafka:")
    # The always-on source runs from the same image, its segment log in a volume.
    assert compose["services"]["stream"]["entrypoint"] == ["spotify-pipeline", "stream"]
    assert any(v.endswith(":/opt/stream") for v in compose["services"]["stream"]["volumes"])
    assert "pip install --no-cache-dir /tmp/*.whl" in (ROOT / "docker" / "Dockerfile").read_text()
    # scripts/setup.sh installs docker-compose (Debian's) to validate the file: missing is a failure.
    validator = shutil.which("docker-compose")
    assert validator, "docker-compose is not installed: run scripts/setup.sh"

    def config(env_file: Path) -> subprocess.CompletedProcess:
        return subprocess.run(
            [validator, "--env-file", str(env_file), "-f", str(ROOT / "docker-compose.yml"), "config"],
            capture_output=True, text=True, env={"PATH": os.environ["PATH"]},
        )

    # The example as shipped has no secret: compose refuses to start, naming what to set.
    refused = config(ROOT / ".env.example")
    assert refused.returncode != 0 and "Missing mandatory value" in refused.stderr, refused.stderr
    names = [line.split("=")[0] for line in (ROOT / ".env.example").read_text().splitlines() if line and not line.startswith("#")]
    env_file = tmp_path / ".env"
    env_file.write_text("".join(f"{n}=test-{n.lower()}-value\n" for n in names if n != "AIRFLOW_JWT_SECRET") + "AIRFLOW_JWT_SECRET=\n")
    refused = config(env_file)
    assert refused.returncode != 0 and "set AIRFLOW_JWT_SECRET in .env" in refused.stderr, refused.stderr
    env_file.write_text("".join(f"{n}=test-{n.lower()}-value\n" for n in names))
    r = config(env_file)
    assert r.returncode == 0, r.stderr
    resolved = yaml.safe_load(r.stdout)
    published = [p for svc in resolved["services"].values() for p in svc.get("ports", [])]
    assert published and all(str(p.get("host_ip") if isinstance(p, dict) else p).startswith("127.0.0.1") for p in published), published
    assert "minioadmin" not in r.stdout and "change-me" not in r.stdout
    assert "test-airflow_jwt_secret-value" in r.stdout
