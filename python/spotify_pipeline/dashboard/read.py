"""The dashboard's data: one read-only pass over the gold tables, shaped as Chart.js configs.

:func:`read_dashboard` opens the DuckDB file read-only, runs every chart's query (:mod:`.charts`)
in one short connection and closes it again, so a writer (the stager, dbt) is blocked for as
little time as possible. A missing table gives that chart a "not built yet" status instead of an
error; a file a writer holds raises :class:`WarehouseBusy`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spotify_pipeline.dashboard.charts import CHARTS, FRESHNESS_SQL, SCHEMA, Chart, points
from spotify_pipeline.hooks.duckdb_lock import WarehouseBusy, is_lock_error

if TYPE_CHECKING:
    import duckdb

KPI_SQL = f"""SELECT sum(plays) AS plays, sum(skips) AS skips, sum(skips) / nullif(sum(plays), 0) AS skip_rate,
    sum(sessions) AS sessions, max(daily_active_users) AS peak_dau, count(*) AS days, min(date) AS first_date, max(date) AS last_date,
    sum(avg_session_duration_s * sessions) / nullif(sum(sessions), 0) AS avg_session_duration_s
  FROM {SCHEMA}.kpi_daily_engagement"""


def _jsonable(v: Any) -> Any:
    if isinstance(v, Decimal):
        return float(v)
    if isinstance(v, datetime | date):
        return v.isoformat()
    return v


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    return [{n: _jsonable(v) for n, v in zip(names, row, strict=False)} for row in cur.fetchall()]


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# The layers the warehouse cannot see: (rows for the freshness chart, why they are missing).
LiveLayers = Callable[[], tuple[list[dict[str, Any]], str | None]]
FRESHNESS = next(c for c in CHARTS if c.id == "freshness")


def live_layers(topic: str, kafka_conn_id: str, lake_url: str, lake_conn_id: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """Kafka's and the lake's newest record (Kafka timestamps, ``_core.freshness``), as rows of
    the freshness chart; on any failure no rows and the reason (the page must still render)."""
    from spotify_pipeline import _core
    from spotify_pipeline.hooks.kafka import SpotifyKafkaHook
    from spotify_pipeline.hooks.lake import LakeHook

    try:
        kafka = SpotifyKafkaHook(kafka_conn_id).kafka_config(topic, timeout_s=5)
        r = _core.freshness(kafka, LakeHook(lake_url, lake_conn_id).lake_config())
    except Exception as e:  # noqa: BLE001 - a broker or a store that is away: say so on the panel
        return [], f"Kafka and the lake could not be read: {str(e)[:200]}"

    def at(ms: int | None) -> str | None:
        return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC).replace(tzinfo=None).isoformat()

    return [{"layer": f"Kafka ({topic})", "layer_order": 1, "newest_event_at": at(r["newest_ms"])},
            {"layer": "lake", "layer_order": 2, "newest_event_at": at(r["newest_drained_ms"])}], None


def with_live_freshness(data: dict[str, Any], live: LiveLayers | None) -> dict[str, Any]:
    """``data`` with its freshness panel built again, now: from the warehouse rows it read and,
    if ``live`` is given, Kafka's and the lake's."""
    rows = data.get("freshness_rows")
    if rows is None:
        return data
    extra, why = live() if live else ([], None)
    config = FRESHNESS.build(extra + rows)
    panel = _panel(FRESHNESS, "ok", why or "", config, points(config))
    return {**data, "charts": {**data["charts"], FRESHNESS.id: panel}}


def read_dashboard(path: str | os.PathLike[str], live: LiveLayers | None = None) -> dict[str, Any]:
    """Reads every chart from the warehouse at ``path``, read-only, in one short connection
    (and Kafka's and the lake's freshness from ``live``, if given).

    Raises :class:`WarehouseBusy` if a writer holds the file's lock.
    """
    import duckdb

    path = str(path)
    out: dict[str, Any] = {"warehouse": path, "as_of": now_iso(), "source": "live", "kpis": None, "charts": {}}
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
        if FRESHNESS.table in tables:
            out["freshness_rows"] = _rows(con, FRESHNESS_SQL)
    finally:
        con.close()
    return with_live_freshness(out, live)


def _panel(c: Chart, status: str, message: str, config: dict[str, Any] | None = None, n: int = 0) -> dict[str, Any]:
    return {
        "title": c.title, "subtitle": c.subtitle, "table": f"{SCHEMA}.{c.table}", "wide": c.wide,
        "status": status, "message": message, "points": n, "chart": config,
    }
