"""The dashboard's data: one read-only pass over the gold tables, shaped as Chart.js configs.

:func:`read_dashboard` opens the DuckDB file read-only, runs every chart's query (:mod:`.charts`)
in one short connection and closes it again, so a writer (the stager, dbt) is blocked for as
little time as possible. A missing table gives that chart a "not built yet" status instead of an
error; a file a writer holds raises :class:`WarehouseBusy`.
"""

from __future__ import annotations

import os
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from spotify_pipeline.dashboard.charts import CHARTS, SCHEMA, Chart, points
from spotify_pipeline.hooks.duckdb_lock import WarehouseBusy, is_lock_error

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


def _rows(con, sql: str) -> list[dict[str, Any]]:
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    return [{n: _jsonable(v) for n, v in zip(names, row)} for row in cur.fetchall()]


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def read_dashboard(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Reads every chart from the warehouse at ``path``, read-only, in one short connection.

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
    finally:
        con.close()
    return out


def _panel(c: Chart, status: str, message: str, config: dict[str, Any] | None = None, n: int = 0) -> dict[str, Any]:
    return {
        "title": c.title, "subtitle": c.subtitle, "table": f"{SCHEMA}.{c.table}", "wide": c.wide,
        "status": status, "message": message, "points": n, "chart": config,
    }
