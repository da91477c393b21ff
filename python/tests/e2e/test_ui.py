"""The Airflow UI the way a person uses it, in real `airflow standalone` on the real stack, with
headless Chromium (Debian's /usr/bin/chromium, driven by npm playwright-core: browser/ui.js).

One run is triggered from the UI's trigger form, one through the REST API v2; each pipeline run
stages bronze, which (an Asset event) runs the dbt transform. Gold is reconciled against the bronze
Parquet files read independently from the lake. Then the dashboard is opened in the browser: every
chart must plot data, and without login the page and its data are refused. The static export of
the same warehouse must open offline. Screenshots go to $SPOTIFY_TEST_ARTIFACTS (default
<repo>/artifacts/ui); the DAG grid and the dashboard are copied to docs/images/ for the README.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import duckdb
import pytest
import requests

from reconcile import committed_bronze
from standalone import ROOT, Standalone, airflow_standalone, artifacts_dir  # noqa: F401  (fixture)

pytestmark = pytest.mark.e2e

# The DAG the UI triggers, and the DAG the staged-bronze Asset schedules (dbt). If the transform
# DAG does not exist, dbt is expected to run inside the pipeline DAG.
PIPELINE_DAG = "spotify_pipeline"
TRANSFORM_DAG = "spotify_transform"
CHARTS = ["top_songs", "top_artists", "engagement", "session_duration", "countries", "peak_hours", "devices", "genres", "trending", "freshness"]
UI_RUN = {"events": 60_000, "seed": 20261124, "start": "2026-11-01T00:00:00Z"}
API_RUN = {"events": 60_000, "seed": 20261125, "start": "2026-11-04T00:00:00Z"}
UI_JS = Path(__file__).parent / "browser" / "ui.js"
CHROMIUM = os.environ.get("SPOTIFY_CHROMIUM", "/usr/bin/chromium")
DOCS_IMAGES = ROOT / "docs" / "images"


def browser(step: str, **args) -> dict:
    node = shutil.which("node")
    assert node and Path(CHROMIUM).exists(), f"needs node and {CHROMIUM} (apt-get install chromium; npm ci)"
    assert (ROOT / "node_modules" / "playwright-core").is_dir(), "needs playwright-core: npm ci (PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1)"
    r = subprocess.run([node, str(UI_JS), step, json.dumps(args)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"browser step {step} failed:\n{r.stderr[-4000:]}"
    return json.loads(r.stdout.strip().splitlines()[-1])


def reconcile(sa: Standalone, stack, topic: str) -> dict:
    """Gold against the bronze Parquet files of the lake, read with boto3 + pyarrow."""
    bronze = committed_bronze(stack, sa.lake_prefix, topic)
    kinds = dict(zip(bronze.column("event_id").to_pylist(), bronze.column("event_type").to_pylist()))
    plays = sum(1 for t in kinds.values() if t == "play")
    with duckdb.connect(str(sa.duckdb_path), read_only=True) as con:
        q = lambda sql: con.execute(sql).fetchone()[0]  # noqa: E731
        gold = {
            "daily_plays": q("select sum(plays) from gold.kpi_daily_engagement"),
            "song_plays": q("select sum(plays) from gold.kpi_song_skip_rates"),
            "genre_plays": q("select sum(plays) from gold.kpi_genre_distribution"),
            "hour_plays": q("select sum(plays) from gold.kpi_listening_hours_local"),
            "activity": q("select count(*) from gold.fct_user_activity"),
            "activity_ids": q("select count(distinct event_id) from gold.fct_user_activity"),
        }
    assert plays > 0
    assert gold["daily_plays"] == gold["song_plays"] == gold["genre_plays"] == gold["hour_plays"] == plays, (gold, plays)
    assert gold["activity"] == gold["activity_ids"] == len(kinds), (gold, len(kinds))
    return {"bronze_rows": bronze.num_rows, "events": len(kinds), "plays": plays}


def run_and_transform(api, run_id: str, known_transform_runs: set[str] | None) -> None:
    api.wait_for_run(PIPELINE_DAG, run_id, timeout_s=1200)
    if known_transform_runs is not None:
        t = api.wait_for_new_run(TRANSFORM_DAG, known_transform_runs, timeout_s=300)
        run = api.wait_for_run(TRANSFORM_DAG, t, timeout_s=1200)
        assert run["run_type"] == "asset_triggered", run


def test_trigger_from_the_ui_then_the_api_and_see_the_dashboard(airflow_standalone, stack, monkeypatch):
    sa = airflow_standalone
    api = sa.api()
    art = artifacts_dir() / "ui"
    art.mkdir(parents=True, exist_ok=True)
    state = str(sa.home / "browser-session.json")  # the logged-in session: not an artifact
    topic = f"test_ui_{uuid.uuid4().hex[:10]}"  # a fresh topic: this lake prefix drains only our records
    assert api.wait_for_dag(PIPELINE_DAG)["is_paused"] is True
    transform = api.has_dag(TRANSFORM_DAG)
    if transform:
        api.unpause(TRANSFORM_DAG)  # the asset schedule only runs an unpaused DAG
    transform_runs = lambda: {r["dag_run_id"] for r in api.runs(TRANSFORM_DAG)} if transform else None  # noqa: E731

    # 1. The UI: log in, unpause, fill the trigger form, trigger.
    known = transform_runs()
    ui = browser(
        "login-trigger", base_url=sa.base_url, username=sa.username, password=sa.password, dag_id=PIPELINE_DAG,
        params={**UI_RUN, "topic": topic}, out_dir=str(art), state=state,
    )
    assert ui["paused_before"] is True and api.dag(PIPELINE_DAG)["is_paused"] is False
    run1 = ui["dag_run_id"]
    conf = api.run(PIPELINE_DAG, run1)["conf"]
    assert {k: conf[k] for k in (*UI_RUN, "topic")} == {**UI_RUN, "topic": topic}, conf
    run_and_transform(api, run1, known)
    assert api.xcom(PIPELINE_DAG, run1, "produce")["events"] == UI_RUN["events"]
    first = reconcile(sa, stack, topic)
    assert first["events"] == first["bronze_rows"] == UI_RUN["events"]

    # 2. The REST API v2: POST /auth/token, then POST dagRuns with "logical_date": null.
    known = transform_runs()
    run2 = api.trigger(PIPELINE_DAG, {**API_RUN, "topic": topic})
    run_and_transform(api, run2, known)
    second = reconcile(sa, stack, topic)
    assert second["events"] == UI_RUN["events"] + API_RUN["events"] and second["plays"] > first["plays"]

    # 3. The DAG grid after both runs.
    browser("grid", base_url=sa.base_url, dag_id=PIPELINE_DAG, out_dir=str(art), state=state, expect_task="stage")
    if transform:
        browser("grid", base_url=sa.base_url, dag_id=TRANSFORM_DAG, out_dir=str(art), state=state, expect_task="dbt_build", name="03-transform-grid.png")

    # 4. The dashboard, logged in (directly and from the Airflow navigation), then logged out.
    d = browser("dashboard", base_url=sa.base_url, out_dir=str(art), state=state)
    for view in ("direct", "embedded"):
        got = d[view]
        assert got["error"] is None and got["source"] == "live", got
        assert sorted(got["charts"]) == sorted(CHARTS)
        for cid in CHARTS:
            assert got["charts"][cid]["status"] == "ok" and got["charts"][cid]["points"] > 0, (view, cid, got["charts"][cid])
            assert got["canvases"][cid]["points"] > 0 and got["canvases"][cid]["width"] > 0, (view, cid)
    assert d["iframe_url"] == f"{sa.base_url}/spotify-dashboard/"
    assert d["external_requests"] == []  # nothing from a CDN
    anon = d["anonymous"]
    assert "/auth/login" in anon["page"]["url"] and not anon["page"]["has_dashboard"], anon
    assert anon["data_status"] == 401 and anon["chart_js_status"] == 401, anon
    for path in ("/spotify-dashboard/", "/spotify-dashboard/data.json"):
        assert requests.get(sa.base_url + path, timeout=30, allow_redirects=False).status_code == 401
        assert requests.get(sa.base_url + path, headers={"Authorization": "Bearer forged"}, timeout=30).status_code == 403
    # The page shows what gold holds.
    data = requests.get(f"{sa.base_url}/spotify-dashboard/data.json", headers={"Authorization": f"Bearer {api.token}"}, timeout=60).json()
    assert data["kpis"]["plays"] == second["plays"] and data["warehouse"] == str(sa.duckdb_path)

    # 5. The static export of the same warehouse, to the MinIO lake and to a local one; opened
    #    from disk with the network cut off, every chart still plots.
    from spotify_pipeline.operators.export_dashboard import DashboardExportOperator

    for key in ("AIRFLOW_CONN_DUCKDB_DEFAULT", "AIRFLOW_CONN_AWS_DEFAULT"):
        monkeypatch.setenv(key, sa.env[key])
    s3_out = DashboardExportOperator(task_id="export_dashboard", lake_url=sa.lake_url, require_data=True).execute({})
    body = stack.s3().get_object(Bucket=stack.bucket, Key=f"{sa.lake_prefix}/{s3_out['latest_key']}")["Body"].read()
    assert len(body) == s3_out["bytes"] and b"spotifyDashboard" in body
    local = art / "lake"
    out = DashboardExportOperator(task_id="export_dashboard", lake_url=f"file://{local}", lake_conn_id=None, require_data=True).execute({})
    offline = browser("static", file=str(local / out["latest_key"]), out_dir=str(art))
    assert offline["blocked_requests"] == []
    for cid in CHARTS:
        assert offline["state"]["charts"][cid]["points"] > 0, cid

    # 6. Screenshots for the README.
    DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
    for src, dest in (("01-login.png", None), ("02-trigger-form.png", "airflow-trigger-form.png"),
                      ("03-dag-grid.png", "airflow-dag-grid.png"), ("04-dashboard.png", "dashboard.png")):
        assert (art / src).stat().st_size > 10_000, src
        if dest:
            shutil.copy2(art / src, DOCS_IMAGES / dest)
