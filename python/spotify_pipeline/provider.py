"""Airflow provider metadata (the ``apache_airflow_provider`` entry point)."""

from __future__ import annotations

from typing import Any

from spotify_pipeline._core import __version__


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "spotify-pipeline",
        "name": "Spotify Pipeline",
        "description": "Simulate, produce, drain and stage Spotify listening events; build silver and gold with dbt.",
        "versions": [__version__],
        "connection-types": [
            {
                "connection-type": "duckdb",
                "hook-class-name": "spotify_pipeline.hooks.duckdb.DuckDBWarehouseHook",
            }
        ],
        "operators": [
            {
                "integration-name": "Spotify Pipeline",
                "python-modules": [
                    "spotify_pipeline.operators.produce",
                    "spotify_pipeline.operators.drain",
                    "spotify_pipeline.operators.stage",
                    "spotify_pipeline.operators.dbt",
                    "spotify_pipeline.operators.export_dashboard",
                    "spotify_pipeline.operators.maintain",
                ],
            }
        ],
        "sensors": [
            {
                "integration-name": "Spotify Pipeline",
                "python-modules": ["spotify_pipeline.sensors.kafka_lag", "spotify_pipeline.sensors.bronze_batch"],
            }
        ],
        "triggers": [
            {
                "integration-name": "Spotify Pipeline",
                "python-modules": [
                    "spotify_pipeline.triggers.kafka_lag",
                    "spotify_pipeline.triggers.bronze_batch",
                    "spotify_pipeline.triggers.records_waiting",
                ],
            }
        ],
        "hooks": [
            {
                "integration-name": "Spotify Pipeline",
                "python-modules": [
                    "spotify_pipeline.hooks.kafka",
                    "spotify_pipeline.hooks.lake",
                    "spotify_pipeline.hooks.duckdb",
                    "spotify_pipeline.hooks.snowflake",
                    "spotify_pipeline.hooks.warehouse",
                ],
            }
        ],
        "integrations": [
            {
                "integration-name": "Spotify Pipeline",
                "external-doc-url": "https://pypi.org/project/spotify-pipeline/",
                "tags": ["software"],
            }
        ],
    }
