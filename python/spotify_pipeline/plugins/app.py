"""The dashboard's FastAPI app, mounted by the Airflow API server under ``/spotify-dashboard``.

Routes (all behind Airflow login: the JWT the Airflow UI keeps in its ``_token`` cookie, or an
``Authorization: Bearer`` token from ``POST /auth/token``):

- ``GET /``: the page (an unauthenticated browser is sent to the Airflow login page);
- ``GET /data.json``: every chart's data, the KPIs, where it was read and when;
- ``GET /static/chart.umd.min.js``: the bundled Chart.js.

The warehouse is the DuckDB file of the Airflow connection ``duckdb_default`` (override with the
environment variable ``SPOTIFY_DASHBOARD_CONN_ID``), opened read-only for each read; a file busy
with a writer is retried, then the last good snapshot is served with its "as of" time.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from spotify_pipeline.dashboard.render import CHART_JS, asset, render_page
from spotify_pipeline.dashboard.snapshot import SnapshotSource
from spotify_pipeline.hooks.duckdb_lock import WarehouseBusy

URL_PREFIX = "/spotify-dashboard"
RESOURCE_NAME = "Spotify Dashboard"


def warehouse_path() -> str:
    from spotify_pipeline.hooks.duckdb import DuckDBWarehouseHook

    return DuckDBWarehouseHook(os.environ.get("SPOTIFY_DASHBOARD_CONN_ID", "duckdb_default")).path


def pipeline_layers() -> tuple[list[dict[str, Any]], str | None]:
    """Kafka's and the lake's freshness, through the pipeline's own connections and Variable."""
    from spotify_pipeline.dashboard.read import live_layers
    from spotify_pipeline.hooks.kafka import SpotifyKafkaHook, ingest_topic
    from spotify_pipeline.hooks.lake import LakeHook, configured_lake_url

    try:
        lake_url = configured_lake_url()
    except Exception as e:  # noqa: BLE001 - no Variable backend reachable
        return [], f"the lake URL could not be read: {e}"
    return live_layers(ingest_topic(), SpotifyKafkaHook.default_conn_name, lake_url, LakeHook.default_conn_name)


def _get_user_dependency() -> Callable[..., Any]:
    from airflow.api_fastapi.core_api.security import get_user

    return get_user


async def require_dashboard_access(request: Request, user: Annotated[Any, Depends(_get_user_dependency())]) -> Any:
    """The explicit auth dependency: a logged-in Airflow user allowed to see this custom view.

    No or expired token: 401; invalid token or not authorized: 403 (from Airflow's own
    ``get_user`` and the auth manager's ``is_authorized_custom_view``).
    """
    from airflow.api_fastapi.app import get_auth_manager

    if not get_auth_manager().is_authorized_custom_view(method="GET", resource_name=RESOURCE_NAME, user=user):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Forbidden")
    return user


@functools.cache
def _chart_js() -> str:
    return asset(CHART_JS)


def create_app(source: SnapshotSource | None = None) -> FastAPI:
    app = FastAPI(title="Spotify dashboard", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.source = source or SnapshotSource(warehouse_path, live=pipeline_layers)
    guarded = [Depends(require_dashboard_access)]

    @app.exception_handler(HTTPException)
    async def to_login(request: Request, exc: HTTPException) -> Response:
        # A browser asking for the page without a session goes to the Airflow login page and
        # comes back here afterwards; API clients get the plain 401.
        page = request.url.path.rstrip("/") == request.scope.get("root_path", "").rstrip("/")
        if exc.status_code == status.HTTP_401_UNAUTHORIZED and page and "text/html" in request.headers.get("accept", ""):
            from airflow.api_fastapi.app import get_auth_manager

            return RedirectResponse(get_auth_manager().get_url_login(next_url=str(request.url)), status.HTTP_303_SEE_OTHER)
        return JSONResponse({"detail": exc.detail}, exc.status_code, headers=getattr(exc, "headers", None))

    @app.get("/", response_class=HTMLResponse, dependencies=guarded)
    def page(request: Request) -> HTMLResponse:
        base = request.scope.get("root_path", "").rstrip("/")
        html = render_page(chart_js_url=f"{base}/static/{CHART_JS}", data_url=f"{base}/data.json")
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    @app.get("/data.json", dependencies=guarded)
    def data(request: Request) -> JSONResponse:
        try:
            payload = request.app.state.source.get()
        except WarehouseBusy as e:
            return JSONResponse({"detail": str(e)}, status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": "5"})
        return JSONResponse(payload, headers={"Cache-Control": "no-store"})

    @app.get(f"/static/{CHART_JS}", dependencies=guarded)
    def chart_js() -> Response:
        return Response(_chart_js(), media_type="text/javascript", headers={"Cache-Control": "private, max-age=3600"})

    return app
