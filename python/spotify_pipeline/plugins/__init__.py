"""The Airflow plugin (``airflow.plugins`` entry point): the analytics dashboard.

- ``fastapi_apps``: the dashboard app (:mod:`spotify_pipeline.plugins.app`), mounted by the API
  server at ``/spotify-dashboard``; every route requires Airflow login.
- ``external_views``: a "Spotify dashboard" entry in the Airflow UI navigation (top level),
  showing that page inside the UI.

The app is built on first access, in the API server only: the scheduler, the workers and the
tasks load plugins too, and need none of it.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from airflow.plugins_manager import AirflowPlugin

URL_PREFIX = "/spotify-dashboard"


class SpotifyPipelinePlugin(AirflowPlugin):
    name = "spotify_pipeline"
    external_views = [  # noqa: RUF012 - AirflowPlugin declares it a plain list attribute; a ClassVar would clash
        {
            "name": "Spotify dashboard",
            # Relative: the UI resolves it against its base URL (works behind a proxy prefix).
            "href": URL_PREFIX.lstrip("/") + "/",
            "url_route": "spotify-dashboard",
            "destination": "nav",
            "nav_top_level": True,
        }
    ]

    @cached_property
    def fastapi_apps(self) -> list[dict[str, Any]]:  # type: ignore[override]
        from spotify_pipeline.plugins.app import create_app

        return [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "Spotify dashboard"}]
