"""The Airflow plugin (``airflow.plugins`` entry point).

It registers the package with Airflow's plugin manager. The analytics dashboard (a FastAPI app
and a navigation link) is added to this plugin by the UI work (issue 7).
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin


class SpotifyPipelinePlugin(AirflowPlugin):
    name = "spotify_pipeline"
