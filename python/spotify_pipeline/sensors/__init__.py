"""Deferrable sensors: they wait in the triggerer, so waiting costs no worker slot."""

from spotify_pipeline.sensors.bronze_batch import BronzeBatchSensor
from spotify_pipeline.sensors.kafka_lag import KafkaLagSensor

__all__ = ["BronzeBatchSensor", "KafkaLagSensor"]
