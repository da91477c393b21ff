"""The analytics dashboard over the gold tables.

- :mod:`.data`: one read-only pass over the warehouse, shaped as Chart.js configs; busy-file
  retries and the last good snapshot.
- :mod:`.render`: the live page and the self-contained static export.
- The Airflow plugin (:mod:`spotify_pipeline.plugins`) serves it inside the Airflow UI; the
  :class:`~spotify_pipeline.operators.export_dashboard.DashboardExportOperator` writes the static
  export into the lake.

Chart.js (MIT, https://www.chartjs.org) is bundled in ``static/``: nothing is loaded from a CDN.
"""

from spotify_pipeline.dashboard.data import CHARTS, SnapshotSource, WarehouseBusy, read_dashboard
from spotify_pipeline.dashboard.render import render_page, render_static

__all__ = ["CHARTS", "SnapshotSource", "WarehouseBusy", "read_dashboard", "render_page", "render_static"]
