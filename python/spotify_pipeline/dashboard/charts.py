"""The dashboard's charts: for each, a query on one gold table (see the gold contract in the dbt
project) and a function that turns its rows into a Chart.js configuration."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

SCHEMA = "gold"

# A colour-blind-safe palette (Okabe-Ito), extended.
PALETTE = [
    "#1db954", "#0072b2", "#e69f00", "#cc79a7", "#56b4e9", "#d55e00", "#009e73", "#f0e442",
    "#6a3d9a", "#999999", "#b15928", "#1f78b4", "#fb9a99", "#33a02c",
]
GREEN, BLUE, ORANGE, GREY = "#1db954", "#0072b2", "#e69f00", "#8a8a8a"

SESSION_BUCKETS = [(0, 60, "< 1"), (60, 300, "1-5"), (300, 600, "5-10"), (600, 1200, "10-20"), (1200, 1800, "20-30"), (1800, 3600, "30-60"), (3600, None, "60+")]


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


def _bar_line(
    labels: list[str], bars: list[Any], bar_label: str, line: list[float | None], line_label: str, horizontal: bool = False,
    bar_unit: str = "plays", line_unit: str = "%",
) -> dict[str, Any]:
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


def _top_songs(rows: list[dict[str, Any]]) -> dict[str, Any]:
    rows = rows[:15]
    labels = [f"{r['song_name']} · {r['artist_name']}" for r in rows]
    return _bar_line(labels, [r["plays"] for r in rows], "plays", [_pct(r["skip_rate"]) for r in rows], "skip rate (%)", horizontal=True)


def _top_artists(rows: list[dict[str, Any]]) -> dict[str, Any]:
    rows = rows[:15]
    return _bar_line(
        [r["artist_name"] for r in rows], [r["plays"] for r in rows], "plays",
        [_pct(r["skip_rate"]) for r in rows], "skip rate (%)", horizontal=True,
    )


def _engagement(rows: list[dict[str, Any]]) -> dict[str, Any]:
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


def _sessions(rows: list[dict[str, Any]]) -> dict[str, Any]:
    counts = {label: 0 for _, _, label in SESSION_BUCKETS}
    for r in rows:
        counts[r["bucket"]] = r["sessions"]
    return {
        "type": "bar",
        "data": {"labels": list(counts), "datasets": [{"label": "sessions", "data": list(counts.values()), "backgroundColor": BLUE}]},
        "options": {"scales": {"x": {"title": {"display": True, "text": "session length (minutes)"}}, "y": {"beginAtZero": True, "title": {"display": True, "text": "sessions"}}}},
    }


def _countries(rows: list[dict[str, Any]]) -> dict[str, Any]:
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


def _hours(rows: list[dict[str, Any]]) -> dict[str, Any]:
    by_hour = {h: 0 for h in range(24)}
    for r in rows:
        by_hour[int(r["local_hour"])] = r["plays"]
    return {
        "type": "bar",
        "data": {"labels": [f"{h:02d}:00" for h in by_hour], "datasets": [{"label": "plays", "data": list(by_hour.values()), "backgroundColor": GREEN}]},
        "options": {"scales": {"x": {"title": {"display": True, "text": "hour of day, listener's local time"}}, "y": {"beginAtZero": True, "title": {"display": True, "text": "plays"}}}},
    }


def _devices(rows: list[dict[str, Any]]) -> dict[str, Any]:
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


def _genres(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "type": "doughnut",
        "data": {
            "labels": [r["genre"] for r in rows],
            "datasets": [{"label": "% of plays", "data": [_pct(r["share_of_plays"]) for r in rows], "backgroundColor": [PALETTE[i % len(PALETTE)] for i in range(len(rows))]}],
        },
        "options": {"plugins": {"legend": {"position": "right"}}},
    }


def _trending(rows: list[dict[str, Any]]) -> dict[str, Any]:
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


def _freshness(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Seconds each layer's newest event is behind now, along the pipeline (rows with
    ``layer``, ``layer_order``, ``newest_event_at`` as naive-UTC ISO text or None)."""
    from datetime import UTC, datetime

    now = datetime.now(UTC).replace(tzinfo=None)
    rows = sorted(rows, key=lambda r: r["layer_order"])
    lags = [None if r["newest_event_at"] is None else round((now - datetime.fromisoformat(str(r["newest_event_at"]))).total_seconds(), 1)
            for r in rows]
    return {
        "type": "bar",
        "data": {"labels": [r["layer"] for r in rows],
                 "datasets": [{"label": "seconds behind now", "data": lags, "backgroundColor": BLUE}]},
        "options": {"indexAxis": "y", "scales": {"x": {"beginAtZero": True, "title": {"display": True, "text": "seconds behind now"}}}},
    }


FRESHNESS_SQL = f"SELECT layer, layer_order, newest_event_at FROM {SCHEMA}.kpi_pipeline_freshness ORDER BY layer_order"


def _session_bucket_sql() -> str:
    cases = " ".join(
        f"WHEN session_duration_s >= {lo}" + (f" AND session_duration_s < {hi}" if hi else "") + f" THEN '{label}'"
        for lo, hi, label in SESSION_BUCKETS
    )
    return f"SELECT CASE {cases} END AS bucket, count(*) AS sessions FROM {SCHEMA}.fct_listening_sessions WHERE session_duration_s IS NOT NULL GROUP BY 1"


CHARTS: list[Chart] = [
    Chart("freshness", "Freshness by layer", "how far each layer's newest event is behind now: Kafka and the lake live, "
          "the warehouse as of the last transform", "kpi_pipeline_freshness", FRESHNESS_SQL, _freshness, wide=True),
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


def points(config: dict[str, Any]) -> int:
    """How many non-null, non-zero values a Chart.js config plots."""
    return sum(1 for ds in config.get("data", {}).get("datasets", []) for v in ds.get("data", []) if v)
