"""spotify-pipeline: an Airflow-native streaming analytics pipeline with a Rust core.

Follow one event: ``operators.produce`` (simulate + produce to Kafka) -> ``operators.drain``
(Kafka -> bronze Parquet in the lake) -> ``operators.stage`` (lake -> warehouse bronze table)
-> ``operators.dbt`` (silver and gold). The heavy work is in the Rust core, ``_core``.
"""

from __future__ import annotations

from spotify_pipeline._core import (
    BrokerUnavailableError,
    ConfigError,
    DataError,
    KafkaError,
    LakeError,
    SpotifyPipelineError,
    __version__,
)

__all__ = [
    "BrokerUnavailableError",
    "ConfigError",
    "DataError",
    "KafkaError",
    "LakeError",
    "SpotifyPipelineError",
    "__version__",
]
