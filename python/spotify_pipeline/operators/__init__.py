"""The operator family, in the order an event meets them."""

from spotify_pipeline.operators.dbt import DbtBuildOperator
from spotify_pipeline.operators.drain import KafkaDrainOperator
from spotify_pipeline.operators.produce import SpotifyProducerOperator
from spotify_pipeline.operators.stage import StageToWarehouseOperator

__all__ = [
    "DbtBuildOperator",
    "KafkaDrainOperator",
    "SpotifyProducerOperator",
    "StageToWarehouseOperator",
]
