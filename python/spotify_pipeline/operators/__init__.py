"""The operator family, in the order an event meets them."""

from spotify_pipeline.operators.dbt import DbtBuildOperator
from spotify_pipeline.operators.drain import KafkaDrainOperator
from spotify_pipeline.operators.export_dashboard import DashboardExportOperator
from spotify_pipeline.operators.maintain import LakeCompactOperator, LakeVacuumOperator
from spotify_pipeline.operators.produce import SpotifyProducerOperator
from spotify_pipeline.operators.stage import StageToWarehouseOperator

__all__ = [
    "DashboardExportOperator",
    "DbtBuildOperator",
    "KafkaDrainOperator",
    "LakeCompactOperator",
    "LakeVacuumOperator",
    "SpotifyProducerOperator",
    "StageToWarehouseOperator",
]
