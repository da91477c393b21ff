"""DashboardExportOperator: the analytics dashboard as one static HTML file in the lake.

The file is the same page the Airflow plugin serves, with Chart.js and the data inlined: it opens
anywhere (a browser on a laptop, an S3 static website, an email attachment), offline, with no
Airflow and no warehouse behind it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from airflow.sdk import BaseOperator

from spotify_pipeline import _core
from spotify_pipeline.dashboard.read import read_dashboard
from spotify_pipeline.dashboard.render import render_static
from spotify_pipeline.hooks.duckdb import DuckDBWarehouseHook
from spotify_pipeline.hooks.duckdb_lock import retry_while_busy
from spotify_pipeline.hooks.lake import LakeHook


class DashboardExportOperator(BaseOperator):
    """Renders the dashboard from the warehouse's gold tables into one self-contained HTML file and
    writes it to the lake as ``<prefix>/<run time>.html`` and ``<prefix>/latest.html``.

    :param lake_url: ``s3://bucket[/prefix]`` or ``file:///abs/dir`` (templated)
    :param lake_conn_id: the ``aws`` connection for ``s3://`` lakes
    :param duckdb_conn_id: the warehouse (templated); opened read-only
    :param prefix: the folder in the lake (templated), default ``dashboards/spotify``
    :param busy_timeout_s: how long to wait while a writer holds the DuckDB file
    :param require_data: fail if a chart has no data (a gold table missing or empty)

    XCom: ``key``, ``latest_key``, ``bytes``, ``charts`` (status and points per chart).
    """

    template_fields: Sequence[str] = ("lake_url", "duckdb_conn_id", "prefix")
    ui_color = "#1db954"

    def __init__(
        self,
        *,
        lake_url: str,
        lake_conn_id: str | None = "aws_default",
        duckdb_conn_id: str = "duckdb_default",
        prefix: str = "dashboards/spotify",
        busy_timeout_s: float = 120,
        require_data: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.lake_url = lake_url
        self.lake_conn_id = lake_conn_id
        self.duckdb_conn_id = duckdb_conn_id
        self.prefix = prefix
        self.busy_timeout_s = busy_timeout_s
        self.require_data = require_data

    def _live(self) -> tuple[list[dict[str, Any]], str | None]:
        from spotify_pipeline.dashboard.read import live_layers
        from spotify_pipeline.hooks.kafka import SpotifyKafkaHook, ingest_topic

        return live_layers(ingest_topic(), SpotifyKafkaHook.default_conn_name, self.lake_url, self.lake_conn_id)

    def _read(self, path: str) -> dict[str, Any]:
        return retry_while_busy(
            lambda: read_dashboard(path, self._live), delay_s=0.5, max_delay_s=10, timeout_s=self.busy_timeout_s,
            on_retry=lambda _, delay: self.log.info("the warehouse %s is busy (a writer holds it); retrying in %.1f s", path, delay),
        )

    def execute(self, context: Any) -> dict[str, Any]:
        path = DuckDBWarehouseHook(self.duckdb_conn_id).path
        data = self._read(path)
        charts = {cid: {"status": c["status"], "points": c["points"]} for cid, c in data["charts"].items()}
        for cid, c in data["charts"].items():
            self.log.info("chart %-16s %-8s %5d points %s", cid, c["status"], c["points"], c["message"])
        missing = [cid for cid, c in charts.items() if c["status"] != "ok"]
        if missing and self.require_data:
            raise ValueError(f"charts without data: {', '.join(missing)}")
        html = render_static(data).encode("utf-8")

        dag_run = context.get("dag_run") if hasattr(context, "get") else None
        when = getattr(dag_run, "run_after", None) or getattr(dag_run, "logical_date", None) or datetime.now(UTC)
        stamp = when.astimezone(UTC).strftime("%Y-%m-%dT%H%M%SZ")
        prefix = self.prefix.strip("/")
        key, latest = f"{prefix}/{stamp}.html", f"{prefix}/latest.html"
        lake = LakeHook(self.lake_url, self.lake_conn_id).lake_config()
        _core.put_object(lake, key, html)
        _core.put_object(lake, latest, html)
        self.log.info("wrote the dashboard (%d bytes) to %s/%s and %s", len(html), self.lake_url.rstrip("/"), key, latest)
        return {"key": key, "latest_key": latest, "bytes": len(html), "charts": charts, "warehouse": path}
