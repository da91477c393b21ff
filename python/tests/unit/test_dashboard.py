"""The dashboard without servers: the query layer on a real DuckDB file, the busy-file fallback to
the last snapshot (a writer in another process holds the lock), login enforced by the FastAPI
app with Airflow's real auth dependency, and the static export into a file:// lake."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from datetime import date, datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import duckdb
import pytest

import spotify_pipeline.dashboard as dash
from spotify_pipeline.dashboard.render import render_static

TOP_SONGS = [(1, "so_1", "Alpha", "Band A", 120, 0.25), (2, "so_2", "Beta", "Band B", 80, 0.5), (3, "so_3", "Gamma", "Band A", 30, None)]
DAYS = [(date(2026, 11, 1), 40, 300, 7.5, 60, 600.0, 75, 0.25), (date(2026, 11, 2), 50, 500, 10.0, 90, 900.0, 100, 0.2)]
SESSIONS = [30, 59, 60, 299, 301, 4000, 4000]  # seconds
NOW = datetime.now(timezone.utc).replace(tzinfo=None)
# Each layer's newest event, this many seconds before the test began.
FRESHNESS = [("warehouse bronze", 3, 30), ("silver", 4, 45), ("gold", 5, 45)]


def make_gold(path: Path, skip: set[str] = frozenset(), empty: set[str] = frozenset()) -> None:
    """A warehouse with the gold contract's tables (schema gold, exact column names) and known rows."""
    tables = {
        "kpi_top_songs": ("play_rank INT, song_id VARCHAR, song_name VARCHAR, artist_name VARCHAR, plays BIGINT, skip_rate DOUBLE", TOP_SONGS),
        "kpi_artist_popularity": (
            "artist_id VARCHAR, artist_name VARCHAR, plays BIGINT, listeners BIGINT, skips BIGINT, skip_rate DOUBLE, popularity_rank INT",
            [("ar_1", "Band A", 150, 20, 30, 0.2, 1), ("ar_2", "Band B", 80, 10, 40, 0.5, 2)],
        ),
        "kpi_daily_engagement": (
            "date DATE, daily_active_users BIGINT, plays BIGINT, plays_per_user DOUBLE, sessions BIGINT, avg_session_duration_s DOUBLE, skips BIGINT, skip_rate DOUBLE",
            DAYS,
        ),
        "fct_listening_sessions": (
            "session_id VARCHAR, user_id VARCHAR, session_date DATE, started_at TIMESTAMP, ended_at TIMESTAMP, session_duration_s BIGINT, events BIGINT, plays BIGINT, skips BIGINT, device_type VARCHAR, country_code VARCHAR, region VARCHAR",
            [(f"se_{i}", "us_1", date(2026, 11, 1), datetime(2026, 11, 1), datetime(2026, 11, 1) + timedelta(seconds=s), s, 3, 2, 1, "mobile", "DE", "Europe") for i, s in enumerate(SESSIONS)],
        ),
        "kpi_country_activity": (
            "country_code VARCHAR, region VARCHAR, active_users BIGINT, plays BIGINT, sessions BIGINT, avg_session_duration_s DOUBLE",
            [("US", "Americas", 30, 500, 100, 700.0), ("DE", "Europe", 20, 300, 50, 650.0)],
        ),
        "kpi_listening_hours_local": (
            "timezone VARCHAR, local_hour INT, plays BIGINT, active_users BIGINT",
            [("Europe/Berlin", 20, 50, 10), ("America/New_York", 20, 70, 12), ("America/New_York", 8, 5, 2)],
        ),
        "kpi_device_by_region": (
            "region VARCHAR, device_type VARCHAR, users BIGINT, plays BIGINT, share_of_region_plays DOUBLE",
            [("Europe", "mobile", 10, 60, 0.6), ("Europe", "desktop", 5, 40, 0.4), ("Americas", "smart_speaker", 8, 100, 1.0)],
        ),
        "kpi_genre_distribution": (
            "genre VARCHAR, plays BIGINT, listeners BIGINT, share_of_plays DOUBLE",
            [("pop", 300, 30, 0.75), ("jazz", 100, 10, 0.25)],
        ),
        "kpi_pipeline_freshness": (
            "layer VARCHAR, layer_order INT, newest_event_at TIMESTAMP, measured_at TIMESTAMP, lag_s DOUBLE",
            [(layer, order, NOW - timedelta(seconds=ago), NOW, float(ago)) for layer, order, ago in FRESHNESS],
        ),
        "kpi_new_release_trending": (
            "song_id VARCHAR, song_name VARCHAR, artist_name VARCHAR, release_date DATE, plays_last_7d BIGINT, plays_prev_7d BIGINT, trending_score DOUBLE, trending_rank INT",
            [("so_9", "Fresh", "Band C", date(2026, 10, 28), 40, 4, 8.2, 1), ("so_8", "Newish", "Band A", date(2026, 10, 1), 10, 9, 1.1, 2)],
        ),
    }
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA gold")
        for name, (cols, rows) in tables.items():
            if name in skip:
                continue
            con.execute(f"CREATE TABLE gold.{name} ({cols})")
            if name not in empty:
                con.executemany(f"INSERT INTO gold.{name} VALUES ({', '.join('?' * len(rows[0]))})", rows)


@pytest.fixture
def warehouse(tmp_path) -> Path:
    path = tmp_path / "spotify.duckdb"
    make_gold(path)
    return path


def test_every_chart_from_the_gold_tables(warehouse):
    d = dash.read_dashboard(warehouse)
    assert d["source"] == "live" and d["warehouse"] == str(warehouse)
    assert {cid: c["status"] for cid, c in d["charts"].items()} == {c.id: "ok" for c in dash.CHARTS}
    charts = {cid: c["chart"] for cid, c in d["charts"].items()}

    songs = charts["top_songs"]["data"]
    assert songs["labels"] == ["Alpha · Band A", "Beta · Band B", "Gamma · Band A"]
    assert songs["datasets"][0]["data"] == [120, 80, 30]
    assert songs["datasets"][1]["data"] == [25.0, 50.0, None]  # skip rate in %, null stays null
    assert charts["top_artists"]["data"]["datasets"][1]["data"] == [20.0, 50.0]

    eng = charts["engagement"]["data"]
    assert eng["labels"] == ["2026-11-01", "2026-11-02"]
    assert [ds["data"] for ds in eng["datasets"]] == [[40, 50], [7.5, 10.0], [25.0, 20.0]]

    # Sessions by length: 30 and 59 s < 1 min; 60 and 299 s 1-5; 301 s 5-10; two over an hour.
    sessions = charts["session_duration"]["data"]
    assert dict(zip(sessions["labels"], sessions["datasets"][0]["data"])) == {"< 1": 2, "1-5": 2, "5-10": 1, "10-20": 0, "20-30": 0, "30-60": 0, "60+": 2}

    assert charts["countries"]["data"]["labels"] == ["US (Americas)", "DE (Europe)"]
    hours = charts["peak_hours"]["data"]
    assert len(hours["labels"]) == 24 and hours["datasets"][0]["data"][20] == 120 and hours["datasets"][0]["data"][8] == 5
    assert sum(hours["datasets"][0]["data"]) == 125

    devices = charts["devices"]["data"]
    assert devices["labels"] == ["Americas", "Europe"]
    stacks = {ds["label"]: ds["data"] for ds in devices["datasets"]}
    assert stacks == {"desktop": [0, 40.0], "mobile": [0, 60.0], "smart_speaker": [100.0, 0]}
    assert charts["devices"]["options"]["scales"]["y"]["stacked"] is True

    assert charts["genres"]["data"]["datasets"][0]["data"] == [75.0, 25.0]
    trending = charts["trending"]["data"]
    assert trending["labels"][0].startswith("Fresh · Band C") and trending["datasets"][0]["data"] == [40, 10]

    k = d["kpis"]
    assert (k["plays"], k["skips"], k["sessions"], k["peak_dau"], k["days"]) == (800, 175, 150, 50, 2)
    assert k["avg_session_duration_s"] == pytest.approx((600 * 60 + 900 * 90) / 150)
    assert json.loads(json.dumps(d)) == d  # the JSON endpoint serves exactly this


def test_missing_and_empty_tables_are_panels_not_errors(tmp_path):
    path = tmp_path / "partial.duckdb"
    make_gold(path, skip={"kpi_top_songs", "kpi_daily_engagement"}, empty={"kpi_genre_distribution"})
    d = dash.read_dashboard(path)
    assert d["charts"]["top_songs"]["status"] == "missing"
    assert "gold.kpi_top_songs is not built yet" in d["charts"]["top_songs"]["message"]
    assert d["charts"]["engagement"]["status"] == "missing" and d["kpis"] is None
    assert d["charts"]["genres"]["status"] == "empty" and d["charts"]["genres"]["points"] == 0
    assert d["charts"]["countries"]["status"] == "ok"

    nowhere = dash.read_dashboard(tmp_path / "nope.duckdb")
    assert {c["status"] for c in nowhere["charts"].values()} == {"missing"}
    assert not (tmp_path / "nope.duckdb").exists()  # reading never creates the warehouse


def test_reads_read_only(warehouse):
    before = warehouse.read_bytes()
    dash.read_dashboard(warehouse)
    assert warehouse.read_bytes() == before
    assert not Path(str(warehouse) + ".wal").exists()
    # Only a read-only connection can share the file with another process's reader.
    reader = Writer(warehouse, mode="read")
    try:
        with pytest.raises(duckdb.IOException, match="lock"):
            duckdb.connect(str(warehouse))
        assert dash.read_dashboard(warehouse)["charts"]["top_songs"]["status"] == "ok"
    finally:
        reader.release()


WRITER = """
import sys, time, duckdb
if sys.argv[2] == "write":
    con = duckdb.connect(sys.argv[1])      # read-write: holds the file's lock
    con.execute("CREATE TABLE IF NOT EXISTS gold.kpi_top_songs_tmp AS SELECT 1 AS x")
elif sys.argv[2] == "hold":
    con = duckdb.connect(sys.argv[1])      # holds the write lock, writes nothing (yet)
else:
    con = duckdb.connect(sys.argv[1], read_only=True)  # a shared lock: other readers only
print("locked", flush=True)
sys.stdin.readline()                         # until the test says so
con.close()
"""


class Writer:
    def __init__(self, path: Path, mode: str = "write") -> None:
        self.p = subprocess.Popen([sys.executable, "-c", WRITER, str(path), mode], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.p.stdout.readline().strip() == "locked"

    def release(self) -> None:
        self.p.stdin.write("\n")
        self.p.stdin.flush()
        assert self.p.wait(timeout=30) == 0


def _but_freshness(charts: dict) -> dict:
    return {k: v for k, v in charts.items() if k != "freshness"}


def test_busy_file_serves_the_last_good_snapshot(warehouse):
    source = dash.SnapshotSource(lambda: str(warehouse), retries=3, delay_s=0.05)
    live = source.get()
    assert live["source"] == "live"
    snap_file = dash.snapshot_path(warehouse)
    assert snap_file == warehouse.with_name("spotify.duckdb.dashboard.json") and snap_file.exists()

    writer = Writer(warehouse)
    try:
        with pytest.raises(dash.WarehouseBusy):
            dash.read_dashboard(warehouse)
        t0 = time.monotonic()
        stale = source.get()
        assert time.monotonic() - t0 < 5  # retried briefly, did not hang
        assert stale["source"] == "snapshot" and stale["as_of"] == live["as_of"]
        assert _but_freshness(stale["charts"]) == _but_freshness(live["charts"]) and "lock" in stale["busy_reason"].lower()
        # The freshness panel is built again against now: the snapshot's layers only age.
        assert stale["charts"]["freshness"]["chart"]["data"]["datasets"][0]["data"] >= live["charts"]["freshness"]["chart"]["data"]["datasets"][0]["data"]

        # A fresh process (an API server restart) still has the snapshot on disk.
        fresh = dash.SnapshotSource(lambda: str(warehouse), retries=2, delay_s=0.05).get()
        assert fresh["source"] == "snapshot" and _but_freshness(fresh["charts"]) == _but_freshness(live["charts"])

        # No snapshot at all: an honest error, not a crash or an empty page.
        snap_file.unlink()
        with pytest.raises(dash.WarehouseBusy, match="no snapshot"):
            dash.SnapshotSource(lambda: str(warehouse), retries=2, delay_s=0.05).get()
    finally:
        writer.release()
    again = source.get()
    assert again["source"] == "live" and snap_file.exists()


def test_an_unchanged_file_is_not_opened_again(warehouse):
    source = dash.SnapshotSource(lambda: str(warehouse))
    first = source.get()
    assert source.reads == 1 and first["source"] == "live"
    mtime = warehouse.stat().st_mtime_ns
    second = source.get()
    assert source.reads == 1 and _but_freshness(second["charts"]) == _but_freshness(first["charts"]) and second["source"] == "live"
    assert warehouse.stat().st_mtime_ns == mtime  # reading does not touch the file

    # A writer that holds the file but has not changed it yet: the current data, no open.
    writer = Writer(warehouse, mode="hold")
    try:
        held = source.get()
    finally:
        writer.release()
    assert held["source"] == "live" and _but_freshness(held["charts"]) == _but_freshness(first["charts"]) and source.reads == 1

    with duckdb.connect(str(warehouse)) as con:
        con.execute("UPDATE gold.kpi_top_songs SET plays = 1000 WHERE play_rank = 3")
    third = source.get()
    assert source.reads == 2
    assert third["charts"]["top_songs"]["chart"]["data"]["datasets"][0]["data"] == [120, 80, 1000]


def test_retry_wins_when_the_writer_finishes_in_time(warehouse):
    writer = Writer(warehouse)
    source = dash.SnapshotSource(lambda: str(warehouse), retries=6, delay_s=0.2)
    threading.Timer(0.5, writer.release).start()
    d = source.get()  # no snapshot exists yet: only the retry can succeed
    assert d["source"] == "live" and d["charts"]["top_songs"]["status"] == "ok"


# ---- the FastAPI app, with Airflow's real auth dependency ----


@pytest.fixture(scope="module")
def auth_manager():
    from airflow.api_fastapi.app import init_auth_manager
    from airflow.utils import db

    db.initdb()  # token checks look up revoked tokens in the metadata DB
    return init_auth_manager()


@pytest.fixture
def client(auth_manager, warehouse, monkeypatch):
    from fastapi.testclient import TestClient

    from spotify_pipeline.plugins.app import create_app

    monkeypatch.setenv("AIRFLOW_CONN_DUCKDB_DEFAULT", json.dumps({"conn_type": "duckdb", "extra": {"path": str(warehouse)}}))
    return TestClient(create_app())


def token(am, role: str | None) -> str:
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return am.generate_jwt(SimpleAuthManagerUser(username=f"user_{role}", role=role))


ROUTES = ["/", "/data.json", "/static/chart.umd.min.js"]


@pytest.mark.parametrize("route", ROUTES)
def test_refused_without_login(client, auth_manager, route):
    r = client.get(route)
    assert r.status_code == 401 and r.json() == {"detail": "Not authenticated"}
    r = client.get(route, headers={"Authorization": "Bearer not-a-jwt"})
    assert r.status_code == 403
    r = client.get(route, cookies={"_token": "not-a-jwt"})
    assert r.status_code == 403
    # Logged in, but with no role: not allowed to see the view.
    r = client.get(route, headers={"Authorization": f"Bearer {token(auth_manager, None)}"})
    assert r.status_code == 403


def test_browser_without_login_goes_to_the_login_page(client):
    r = client.get("/", headers={"Accept": "text/html"}, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/auth/login?next=")
    assert client.get("/data.json", headers={"Accept": "text/html"}, follow_redirects=False).status_code == 401


def test_served_with_login(client, auth_manager, warehouse):
    viewer = {"Authorization": f"Bearer {token(auth_manager, 'viewer')}"}
    r = client.get("/data.json", headers=viewer)
    assert r.status_code == 200
    assert _but_freshness(r.json()["charts"]) == json.loads(json.dumps(_but_freshness(dash.read_dashboard(warehouse)["charts"])))
    # The Airflow UI's session cookie works too.
    page = client.get("/", cookies={"_token": token(auth_manager, "admin")})
    assert page.status_code == 200 and "spotifyDashboard" in page.text
    assert '<script src="/static/chart.umd.min.js">' in page.text and '"/data.json"' in page.text
    js = client.get("/static/chart.umd.min.js", headers=viewer)
    assert js.status_code == 200 and js.text.startswith("/*!\n * Chart.js v4") and len(js.text) > 100_000


def test_busy_without_snapshot_is_a_503(client, auth_manager, warehouse):
    writer = Writer(warehouse)
    try:
        r = client.get("/data.json", headers={"Authorization": f"Bearer {token(auth_manager, 'admin')}"})
    finally:
        writer.release()
    assert r.status_code == 503 and "busy" in r.json()["detail"]


def test_plugin_declares_the_app_and_the_nav_entry():
    from spotify_pipeline.plugins import SpotifyPipelinePlugin

    plugin = SpotifyPipelinePlugin()
    (app,) = plugin.fastapi_apps
    assert app["url_prefix"] == "/spotify-dashboard" and app["app"].routes
    (view,) = plugin.external_views
    assert view["href"] == "spotify-dashboard/" and view["url_route"] == "spotify-dashboard" and view["destination"] == "nav"


# ---- static export ----


class Resources(HTMLParser):
    """Every place an HTML page could load something from elsewhere."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.scripts: list[dict] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        a = dict(attrs)
        if tag == "script":
            self.scripts.append(a)
        for name in ("src", "href", "srcset", "poster", "data", "action", "background"):
            if a.get(name):
                self.refs.append(f"{tag}.{name}={a[name]}")


def test_static_export_is_one_self_contained_file(warehouse, tmp_path, monkeypatch):
    from spotify_pipeline.operators.export_dashboard import DashboardExportOperator

    monkeypatch.setenv("AIRFLOW_CONN_DUCKDB_DEFAULT", json.dumps({"conn_type": "duckdb", "extra": {"path": str(warehouse)}}))
    lake = tmp_path / "lake"
    op = DashboardExportOperator(task_id="export_dashboard", lake_url=f"file://{lake}", lake_conn_id=None, require_data=True)
    out = op.execute({"dag_run": SimpleNamespace(run_after=datetime(2026, 11, 24, 5, 14, 55, tzinfo=timezone.utc))})
    assert out["key"] == "dashboards/spotify/2026-11-24T051455Z.html" and out["latest_key"] == "dashboards/spotify/latest.html"
    assert sorted(p.relative_to(lake).as_posix() for p in lake.rglob("*") if p.is_file()) == [out["key"], out["latest_key"]]
    html = (lake / out["key"]).read_text()
    assert (lake / out["latest_key"]).read_text() == html and len(html.encode()) == out["bytes"]
    assert all(c["status"] == "ok" and c["points"] > 0 for c in out["charts"].values())

    page = Resources()
    page.feed(html)
    assert page.refs == []  # no src=, href=, ... anywhere
    assert page.scripts and all("src" not in s for s in page.scripts)
    assert not page.tags & {"link", "img", "iframe", "object", "embed", "base"}
    assert not re.search(r"url\(|@import|fetch\(\s*['\"]https?:", html)
    # The only absolute URLs are Chart.js's license banner; it is inlined whole.
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", html))
    assert urls and all(u.startswith(("https://www.chartjs.org", "https://github.com/kurkle/color")) for u in urls), urls
    assert "Chart.js v4" in html and "Released under the MIT License" in html

    m = re.search(r'<script type="application/json" id="dashboard-data">(.*?)</script>', html, re.S)
    inlined = json.loads(m.group(1))
    assert _but_freshness(inlined["charts"]) == json.loads(json.dumps(_but_freshness(dash.read_dashboard(warehouse)["charts"])))
    assert inlined["exported_at"]


def test_static_export_escapes_data_that_looks_like_html(tmp_path):
    path = tmp_path / "evil.duckdb"
    make_gold(path)
    with duckdb.connect(str(path)) as con:
        con.execute("UPDATE gold.kpi_top_songs SET song_name = '</script><script>alert(1)</script>' WHERE play_rank = 1")
    html = render_static(dash.read_dashboard(path))
    assert "<script>alert(1)" not in html
    m = re.search(r'<script type="application/json" id="dashboard-data">(.*?)</script>', html, re.S)
    assert json.loads(m.group(1))["charts"]["top_songs"]["chart"]["data"]["labels"][0].startswith("</script><script>alert(1)")


def test_warehouse_from_a_connection_in_the_metadata_db(auth_manager, warehouse, monkeypatch):
    """In the API server (process context "server") the connection may live in Airflow's own
    connection store rather than the environment."""
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    from spotify_pipeline.plugins.app import warehouse_path

    conn_id = "duckdb_dashboard_test"
    with create_session() as s:
        s.query(Connection).filter(Connection.conn_id == conn_id).delete()
        s.add(Connection(conn_id=conn_id, conn_type="duckdb", extra=json.dumps({"path": str(warehouse)})))
    monkeypatch.setenv("_AIRFLOW_PROCESS_CONTEXT", "server")
    monkeypatch.setenv("SPOTIFY_DASHBOARD_CONN_ID", conn_id)
    assert warehouse_path() == str(warehouse)


def test_freshness_panel_puts_kafka_and_the_lake_live_before_the_warehouse_layers(warehouse):
    live_at = (NOW - timedelta(seconds=5)).isoformat()
    calls = []

    def live():
        calls.append(1)
        return [{"layer": "Kafka (t)", "layer_order": 1, "newest_event_at": live_at},
                {"layer": "lake", "layer_order": 2, "newest_event_at": None}], None

    d = dash.read_dashboard(warehouse, live)
    panel = d["charts"]["freshness"]
    assert panel["status"] == "ok" and calls
    data = panel["chart"]["data"]
    assert data["labels"] == ["Kafka (t)", "lake", "warehouse bronze", "silver", "gold"]
    lags = data["datasets"][0]["data"]
    assert lags[1] is None  # an empty lake has no newest event
    # Behind now by what the rows say, plus the time since NOW was taken (at import: the whole
    # suite may have run since, 23 minutes in CI).
    since = (datetime.now(timezone.utc).replace(tzinfo=None) - NOW).total_seconds()
    for lag, ago in zip([lags[0], *lags[2:]], [5] + [a for _, _, a in FRESHNESS]):
        assert ago + since - 5 <= lag < ago + since + 5

    # A broker that is away: the warehouse layers still show, with the reason.
    d = dash.read_dashboard(warehouse, lambda: ([], "Kafka and the lake could not be read: no broker"))
    assert d["charts"]["freshness"]["chart"]["data"]["labels"] == ["warehouse bronze", "silver", "gold"]
    assert "no broker" in d["charts"]["freshness"]["message"]


def test_the_snapshot_source_reads_kafka_and_the_lake_on_every_request_but_the_file_once(warehouse):
    from spotify_pipeline.dashboard.snapshot import SnapshotSource

    n = []

    def live():
        n.append(1)
        return [{"layer": "Kafka (t)", "layer_order": 1, "newest_event_at": NOW.isoformat()}], None

    source = SnapshotSource(lambda: str(warehouse), live=live)
    for _ in range(3):
        assert source.get()["charts"]["freshness"]["chart"]["data"]["labels"][0] == "Kafka (t)"
    assert source.reads == 1 and len(n) == 3


def test_the_duckdb_connection_test_button(warehouse, tmp_path, monkeypatch):
    """DuckDBWarehouseHook.test_connection: opens an existing file read-only, accepts a file
    the first stage will create (creating nothing), and says why it cannot otherwise."""
    from spotify_pipeline.hooks.duckdb import DuckDBWarehouseHook

    def test(path: Path) -> tuple[bool, str]:
        monkeypatch.setenv("AIRFLOW_CONN_DUCKDB_T", json.dumps({"conn_type": "duckdb", "extra": {"path": str(path)}}))
        return DuckDBWarehouseHook("duckdb_t").test_connection()

    ok, msg = test(warehouse)
    assert ok and "opened read-only" in msg, msg
    ok, msg = test(tmp_path / "new.duckdb")
    assert ok and "does not exist yet" in msg and not (tmp_path / "new.duckdb").exists()
    ok, msg = test(tmp_path / "nowhere" / "x.duckdb")
    assert not ok and "does not exist" in msg
    writer = Writer(warehouse)
    try:
        ok, msg = test(warehouse)
        assert not ok and "lock" in msg.lower(), msg
    finally:
        writer.release()
