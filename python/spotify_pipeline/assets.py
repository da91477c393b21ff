"""The pipeline's Airflow Assets: what each DAG produces and what the next one waits for.

``spotify_pipeline`` (produce -> drain -> stage) updates ``STAGED_BRONZE`` when a stage loads
batches into the warehouse; ``spotify_transform`` (dbt) is scheduled on it, not on time.
"""

from __future__ import annotations

import os
from pathlib import Path

from airflow.sdk import Asset

KAFKA_EVENTS = Asset(name="spotify_kafka_events", uri="kafka://spotify/spotify_events", group="spotify")
BRONZE_LAKE = Asset(name="spotify_bronze_lake", uri="s3://spotify-lake/bronze/spotify_events", group="spotify")
# The warehouse's bronze table, whichever warehouse it is: the event's extra says which.
STAGED_BRONZE = Asset(name="spotify_staged_bronze", uri="spotify://warehouse/bronze/spotify_events", group="spotify")

# The gold tables (dbt marts) that BI tools and the dashboard read: the contract. The transform
# DAG declares an Asset for every mart (dbt_gold_assets), these among them.
GOLD_MODELS = (
    "fct_user_activity", "fct_listening_sessions", "dim_songs", "dim_artists", "dim_users",
    "kpi_daily_engagement", "kpi_song_skip_rates", "kpi_artist_popularity", "kpi_top_songs",
    "kpi_genre_distribution", "kpi_new_release_trending", "kpi_country_activity",
    "kpi_listening_hours_local", "kpi_device_by_region",
)


DEFAULT_ASSET_URI_PREFIX = "spotify://warehouse"
DEFAULT_ASSET_NAME_PREFIX = "spotify"


def gold_asset(
    model: str,
    schema: str = "gold",
    uri_prefix: str = DEFAULT_ASSET_URI_PREFIX,
    name_prefix: str = DEFAULT_ASSET_NAME_PREFIX,
) -> Asset:
    """The Airflow Asset of one gold table: uri ``<uri_prefix>/<schema>/<model>``, name
    ``<name_prefix>_<schema>_<model>``."""
    return Asset(name=f"{name_prefix}_{schema}_{model}", uri=f"{uri_prefix.rstrip('/')}/{schema}/{model}", group="spotify")


GOLD_ASSETS = [gold_asset(m) for m in GOLD_MODELS]


def gold_model_names(project_dir: str | os.PathLike[str], folder: str = "models/marts") -> list[str]:
    """Names of the models in ``folder`` of the dbt project (the gold schema), sorted."""
    root = Path(project_dir) / folder
    return sorted({p.stem for p in root.rglob("*.sql")}) if root.is_dir() else []


def dbt_gold_assets(
    project_dir: str | os.PathLike[str],
    schema: str = "gold",
    uri_prefix: str = DEFAULT_ASSET_URI_PREFIX,
    name_prefix: str = DEFAULT_ASSET_NAME_PREFIX,
    folder: str = "models/marts",
) -> list[Asset]:
    """One Asset per gold model of the dbt project, for ``outlets=`` (read from the files at parse
    time: cheap, no dbt parse)."""
    return [gold_asset(m, schema, uri_prefix, name_prefix) for m in gold_model_names(project_dir, folder)]
