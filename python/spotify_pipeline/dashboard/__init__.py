"""The analytics dashboard over the gold tables.

- :mod:`.charts`: each chart's query on a gold table and its Chart.js configuration.
- :mod:`.read`: one read-only pass over the warehouse, every chart and the KPIs.
- :mod:`.snapshot`: busy-file retries and the last good snapshot, for the web page.
- :mod:`.render`: the live page and the self-contained static export.
- The Airflow plugin (:mod:`spotify_pipeline.plugins`) serves it inside the Airflow UI; the
  :class:`~spotify_pipeline.operators.export_dashboard.DashboardExportOperator` writes the static
  export into the lake.

Chart.js (MIT, https://www.chartjs.org) is bundled in ``static/``: nothing is loaded from a CDN.
"""

from spotify_pipeline.dashboard.charts import CHARTS
from spotify_pipeline.dashboard.read import read_dashboard
from spotify_pipeline.dashboard.render import render_page, render_static
from spotify_pipeline.dashboard.snapshot import SnapshotSource, snapshot_path
from spotify_pipeline.hooks.duckdb_lock import WarehouseBusy

__all__ = ["CHARTS", "SnapshotSource", "WarehouseBusy", "read_dashboard", "render_page", "render_static", "snapshot_path"]
