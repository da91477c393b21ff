"""The dashboard's data: one read-only pass over the gold tables, shaped as Chart.js configs.

Every chart is a query on one gold table (see the gold contract in the dbt project) and a function
that turns its rows into a Chart.js configuration. :func:`read_dashboard` opens the DuckDB file
read-only, runs every query in one short connection and closes it again, so a writer (the stager,
dbt) is blocked for as little time as possible. A missing table gives that chart a "not built
yet" status instead of an error.

:class:`SnapshotSource` adds what a web page needs on top: a DuckDB file busy with a writer is
retried briefly, and if it stays busy the last good snapshot is served (kept in memory and in a
JSON file next to the database), marked with the time it was read.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

SCHEMA = "gold"

# A colour-blind-safe palette (Okabe-Ito), extended.
PALETTE = [
    "#1db954", "#0072b2", "#e69f00", "#cc79a7", "#56b4e9", "#d55e00", "#009e73", "#f0e442",
    "#6a3d9a", "#999999", "#b15928", "#1f78b4", "#fb9a99", "#33a02c",
]
GREEN, BLUE, ORANGE, GREY = "#1db954", "#0072b2", "#e69f00", "#8a8a8a"

SESSION_BUCKETS = [(0, 60, "< 1"), (60, 300, "1-5"), (300, 600, "5-10"), (600, 1200, "10-20"), (1200, 1800, "20-30"), (1800, 3600, "30-60"), (3600, None, "60+")]


class WarehouseBusy(Exception):
    """The DuckDB file is locked by a writing process."""


@dataclass(frozen=True)
class Chart:
    id: str
    title: str
    subtitle: str
    table: str
    sql: str
    build: Callable[[list[dict[str, Any]]], dict[str, Any]]
    wide: bool = False


def _num(v: Any) -> Any:
    if isinstance(v, Decimal):
        return float(v)
    return v


def _pct(v: Any) -> float | None:
    return None if v is None else round(float(v) * 100, 2)


def _bar_line(labels, bars, bar_label, line, line_label, horizontal=False, bar_unit="plays", line_unit="%") -> dict[str, Any]:
    """Bars (counts) with a line (a rate) on a second axis."""
    value_axis, cat_axis = ("x", "y") if horizontal else ("y", "x")
    return {
        "type": "bar",
        "data": {
            "labels": labels,
            "datasets": [
                {"label": bar_label, "data": bars, "backgroundColor": GREEN, "order": 2, f"{value_axis}AxisID": value_axis},
                {
                    "label": line_label, "data": line, "type": "line", "borderColor": ORANGE, "backgroundColor": ORANGE,
                    "order": 1, f"{value_axis}AxisID": f"{value_axis}2", "pointRadius": 3, "showLine": not horizontal,
                },
            ],
        },
        "options": {
            "indexAxis": "y" if horizontal else "x",
            "scales": {
                value_axis: {"beginAtZero": True, "title": {"display": True, "text": bar_unit}, "position": "bottom" if horizontal else "left"},
                f"{value_axis}2": {
                    "beginAtZero": True, "title": {"display": True, "text": line_unit},
                    "position": "top" if horizontal else "right", "grid": {"drawOnChartArea": False},
                },
                cat_axis: {"ticks": {"autoSkip": False}},
            },
        },
    }


def _top_songs(rows):
    rows = rows[:15]
    labels = [f"{r['song_name']} · {r['artist_name']}" for r in rows]
    return _bar_line(labels, [r["plays"] for r in rows], "plays", [_pct(r["skip_rate"]) for r in rows], "skip rate (%)", horizontal=True)


def _top_artists(rows):
    rows = rows[:15]
    return _bar_line(
        [r["artist_name"] for r in rows], [r["plays"] for r in rows], "plays",
        [_pct(r["skip_rate"]) for r in rows], "skip rate (%)", horizontal=True,
    )


def _engagement(rows):
    return {
        "type": "line",
        "data": {
            "labels": [str(r["date"]) for r in rows],
            "datasets": [
                {"label": "daily active users", "data": [r["daily_active_users"] for r in rows], "borderColor": GREEN, "backgroundColor": GREEN, "yAxisID": "y", "tension": 0.2},
                {"label": "plays per user", "data": [_num(r["plays_per_user"]) for r in rows], "borderColor": BLUE, "backgroundColor": BLUE, "yAxisID": "y2", "tension": 0.2},
                {"label": "skip rate (%)", "data": [_pct(r["skip_rate"]) for r in rows], "borderColor": ORANGE, "backgroundColor": ORANGE, "yAxisID": "y2", "borderDash": [4, 3], "tension": 0.2},
            ],
        },
        "options": {
            "scales": {
                "y": {"beginAtZero": True, "title": {"display": True, "text": "users"}},
                "y2": {"beginAtZero": True, "position": "right", "title": {"display": True, "text": "plays per user · skip %"}, "grid": {"drawOnChartArea": False}},
                "x": {"title": {"display": True, "text": "date (UTC)"}},
            },
        },
    }


def _sessions(rows):
    counts = {label: 0 for _, _, label in SESSION_BUCKETS}
    for r in rows:
        counts[r["bucket"]] = r["sessions"]
    return {
        "type": "bar",
        "data": {"labels": list(counts), "datasets": [{"label": "sessions", "data": list(counts.values()), "backgroundColor": BLUE}]},
        "options": {"scales": {"x": {"title": {"display": True, "text": "session length (minutes)"}}, "y": {"beginAtZero": True, "title": {"display": True, "text": "sessions"}}}},
    }


def _countries(rows):
    return {
        "type": "bar",
        "data": {
            "labels": [f"{r['country_code']} ({r['region']})" for r in rows],
            "datasets": [
                {"label": "plays", "data": [r["plays"] for r in rows], "backgroundColor": GREEN, "xAxisID": "x"},
                {"label": "active users", "data": [r["active_users"] for r in rows], "backgroundColor": BLUE, "xAxisID": "x2"},
            ],
        },
        "options": {
            "indexAxis": "y",
            "scales": {
                "x": {"beginAtZero": True, "title": {"display": True, "text": "plays"}},
                "x2": {"beginAtZero": True, "position": "top", "title": {"display": True, "text": "active users"}, "grid": {"drawOnChartArea": False}},
                "y": {"ticks": {"autoSkip": False}},
            },
        },
    }


def _hours(rows):
    by_hour = {h: 0 for h in range(24)}
    for r in rows:
        by_hour[int(r["local_hour"])] = r["plays"]
    return {
        "type": "bar",
        "data": {"labels": [f"{h:02d}:00" for h in by_hour], "datasets": [{"label": "plays", "data": list(by_hour.values()), "backgroundColor": GREEN}]},
        "options": {"scales": {"x": {"title": {"display": True, "text": "hour of day, listener's local time"}}, "y": {"beginAtZero": True, "title": {"display": True, "text": "plays"}}}},
    }


def _devices(rows):
    regions = sorted({r["region"] for r in rows})
    devices = sorted({r["device_type"] for r in rows})
    share = {(r["region"], r["device_type"]): _pct(r["share_of_region_plays"]) for r in rows}
    return {
        "type": "bar",
        "data": {
            "labels": regions,
            "datasets": [
                {"label": d, "data": [share.get((reg, d)) or 0 for reg in regions], "backgroundColor": PALETTE[i % len(PALETTE)]}
                for i, d in enumerate(devices)
            ],
        },
        "options": {
            "scales": {
                "x": {"stacked": True},
                "y": {"stacked": True, "beginAtZero": True, "max": 100, "title": {"display": True, "text": "% of the region's plays"}},
            },
        },
    }


def _genres(rows):
    return {
        "type": "doughnut",
        "data": {
            "labels": [r["genre"] for r in rows],
            "datasets": [{"label": "% of plays", "data": [_pct(r["share_of_plays"]) for r in rows], "backgroundColor": [PALETTE[i % len(PALETTE)] for i in range(len(rows))]}],
        },
        "options": {"plugins": {"legend": {"position": "right"}}},
    }


def _trending(rows):
    rows = rows[:10]
    return {
        "type": "bar",
        "data": {
            "labels": [f"{r['song_name']} · {r['artist_name']} ({r['release_date']})" for r in rows],
            "datasets": [
                {"label": "plays, last 7 days", "data": [r["plays_last_7d"] for r in rows], "backgroundColor": GREEN},
                {"label": "plays, 7 days before", "data": [r["plays_prev_7d"] for r in rows], "backgroundColor": GREY},
            ],
        },
        "options": {"indexAxis": "y", "scales": {"x": {"beginAtZero": True, "title": {"display": True, "text": "plays"}}, "y": {"ticks": {"autoSkip": False}}}},
    }


def _session_bucket_sql() -> str:
    cases = " ".join(
        f"WHEN session_duration_s >= {lo}" + (f" AND session_duration_s < {hi}" if hi else "") + f" THEN '{label}'"
        for lo, hi, label in SESSION_BUCKETS
    )
    return f"SELECT CASE {cases} END AS bucket, count(*) AS sessions FROM {SCHEMA}.fct_listening_sessions WHERE session_duration_s IS NOT NULL GROUP BY 1"


CHARTS: list[Chart] = [
    Chart("top_songs", "Top songs", "plays (bars) and skip rate (line, %), all days", "kpi_top_songs",
          f"SELECT play_rank, song_name, artist_name, plays, skip_rate FROM {SCHEMA}.kpi_top_songs ORDER BY play_rank LIMIT 15", _top_songs),
    Chart("top_artists", "Top artists", "plays (bars) and skip rate (line, %), all days", "kpi_artist_popularity",
          f"SELECT artist_name, plays, skip_rate FROM {SCHEMA}.kpi_artist_popularity ORDER BY popularity_rank, artist_name LIMIT 15", _top_artists),
    Chart("engagement", "Daily active users and engagement", "per UTC day", "kpi_daily_engagement",
          f"SELECT date, daily_active_users, plays_per_user, skip_rate FROM {SCHEMA}.kpi_daily_engagement ORDER BY date", _engagement, wide=True),
    Chart("session_duration", "Session duration", "sessions by length", "fct_listening_sessions", _session_bucket_sql(), _sessions),
    Chart("countries", "Activity by country", "ranked by plays", "kpi_country_activity",
          f"SELECT country_code, region, plays, active_users FROM {SCHEMA}.kpi_country_activity ORDER BY plays DESC, country_code", _countries),
    Chart("peak_hours", "Peak listening hours", "plays by local hour, all time zones", "kpi_listening_hours_local",
          f"SELECT local_hour, sum(plays) AS plays FROM {SCHEMA}.kpi_listening_hours_local GROUP BY local_hour ORDER BY local_hour", _hours),
    Chart("devices", "Devices by region", "share of each region's plays (%)", "kpi_device_by_region",
          f"SELECT region, device_type, share_of_region_plays FROM {SCHEMA}.kpi_device_by_region ORDER BY region, device_type", _devices),
    Chart("genres", "Genre distribution", "share of plays (%)", "kpi_genre_distribution",
          f"SELECT genre, share_of_plays FROM {SCHEMA}.kpi_genre_distribution ORDER BY plays DESC, genre", _genres),
    Chart("trending", "Trending new releases", "top 10 by trending score: plays in the last 7 days against the 7 before", "kpi_new_release_trending",
          f"SELECT song_name, artist_name, release_date, plays_last_7d, plays_prev_7d FROM {SCHEMA}.kpi_new_release_trending ORDER BY trending_rank LIMIT 10", _trending),
]

KPI_SQL = f"""SELECT sum(plays) AS plays, sum(skips) AS skips, sum(skips) / nullif(sum(plays), 0) AS skip_rate,
    sum(sessions) AS sessions, max(daily_active_users) AS peak_dau, count(*) AS days, min(date) AS first_date, max(date) AS last_date,
    sum(avg_session_duration_s * sessions) / nullif(sum(sessions), 0) AS avg_session_duration_s
  FROM {SCHEMA}.kpi_daily_engagement"""


def points(config: dict[str, Any]) -> int:
    """How many non-null, non-zero values a Chart.js config plots."""
    return sum(1 for ds in config.get("data", {}).get("datasets", []) for v in ds.get("data", []) if v)


def _jsonable(v: Any) -> Any:
    if isinstance(v, Decimal):
        return float(v)
    if isinstance(v, datetime | date):
        return v.isoformat()
    return v


def _rows(con, sql: str) -> list[dict[str, Any]]:
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    return [{n: _jsonable(v) for n, v in zip(names, row)} for row in cur.fetchall()]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def is_lock_error(e: BaseException) -> bool:
    text = str(e).lower()
    return "lock" in text and ("conflicting" in text or "could not set lock" in text or "lock on file" in text)


def read_dashboard(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Reads every chart from the warehouse at ``path``, read-only, in one short connection.

    Raises :class:`WarehouseBusy` if a writer holds the file's lock.
    """
    import duckdb

    path = str(path)
    out: dict[str, Any] = {"warehouse": path, "as_of": _now(), "source": "live", "kpis": None, "charts": {}}
    if not Path(path).exists():
        for c in CHARTS:
            out["charts"][c.id] = _panel(c, "missing", f"The warehouse {path} does not exist yet: run the spotify_pipeline DAG.")
        return out
    try:
        con = duckdb.connect(path, read_only=True)
    except duckdb.Error as e:
        if is_lock_error(e):
            raise WarehouseBusy(str(e)) from e
        raise
    try:
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = ?", [SCHEMA]).fetchall()}
        for c in CHARTS:
            if c.table not in tables:
                out["charts"][c.id] = _panel(c, "missing", f"{SCHEMA}.{c.table} is not built yet: run dbt (the spotify_transform DAG).")
                continue
            rows = _rows(con, c.sql)
            config = c.build(rows) if rows else {}
            n = points(config) if rows else 0
            if n == 0:
                out["charts"][c.id] = _panel(c, "empty", f"{SCHEMA}.{c.table} has no rows yet.")
            else:
                out["charts"][c.id] = _panel(c, "ok", "", config, n)
        if "kpi_daily_engagement" in tables:
            k = _rows(con, KPI_SQL)[0]
            out["kpis"] = k if k.get("days") else None
    finally:
        con.close()
    return out


def _panel(c: Chart, status: str, message: str, config: dict[str, Any] | None = None, n: int = 0) -> dict[str, Any]:
    return {
        "title": c.title, "subtitle": c.subtitle, "table": f"{SCHEMA}.{c.table}", "wide": c.wide,
        "status": status, "message": message, "points": n, "chart": config,
    }


def snapshot_path(db_path: str | os.PathLike[str]) -> Path:
    """Where the last good snapshot of ``db_path`` is kept: next to it."""
    p = Path(db_path)
    return p.with_name(p.name + ".dashboard.json")


def file_version(path: str) -> tuple | None:
    """Changes whenever DuckDB writes the file or its write-ahead log."""
    out = []
    for p in (path, path + ".wal"):
        try:
            st = os.stat(p)
        except FileNotFoundError:
            out.append(None)
            continue
        out.append((st.st_mtime_ns, st.st_size, st.st_ino))
    return None if out[0] is None else tuple(out)


class SnapshotSource:
    """Reads the dashboard with retries while the file is busy, and falls back to the last good
    snapshot (memory, then disk) when it stays busy.

    While the file has not changed since the last good read, that read is served again without
    opening the file: even a read-only connection takes a lock that would make a writer (the
    stager, dbt) fail to open the file, so the dashboard opens it only when there is news.
    """

    def __init__(self, path_fn: Callable[[], str], retries: int = 4, delay_s: float = 0.15) -> None:
        self.path_fn = path_fn
        self.retries = retries
        self.delay_s = delay_s
        self._lock = threading.Lock()
        self._last: dict[str, dict[str, Any]] = {}
        self._version: dict[str, tuple | None] = {}
        self.reads = 0  # opens of the warehouse, for tests and logs

    def get(self) -> dict[str, Any]:
        path = self.path_fn()
        version = file_version(path)
        if version is not None and path in self._last and self._version.get(path) == version:
            return {**self._last[path], "as_of": _now()}  # unchanged since that read: current
        error: Exception | None = None
        for attempt in range(self.retries):
            try:
                self.reads += 1
                data = read_dashboard(path)
            except WarehouseBusy as e:
                error = e
                if attempt + 1 < self.retries:
                    time.sleep(self.delay_s * (2**attempt))
                continue
            self._remember(path, data, version)
            return data
        stale = self._last.get(path) or self._load(path)
        if stale is None:
            raise WarehouseBusy(f"the warehouse is busy and no snapshot was taken yet: {error}")
        return {**stale, "source": "snapshot", "busy_reason": str(error)}

    def _remember(self, path: str, data: dict[str, Any], version: tuple | None) -> None:
        if not Path(path).exists():
            return
        with self._lock:
            self._last[path] = data
            # The version seen before the read: if a writer changed the file during the read,
            # the next request reads again.
            self._version[path] = version
            target = snapshot_path(path)
            tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
            try:
                tmp.write_text(json.dumps(data))
                os.replace(tmp, target)
            except OSError:
                tmp.unlink(missing_ok=True)

    def _load(self, path: str) -> dict[str, Any] | None:
        try:
            return json.loads(snapshot_path(path).read_text())
        except (OSError, ValueError):
            return None
