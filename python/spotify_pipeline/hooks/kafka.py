"""Kafka connection -> the core's Kafka config.

Uses the ``kafka`` connection type of apache-airflow-providers-apache-kafka: its extra is a
librdkafka config dict, for example ``{"bootstrap.servers": "127.0.0.1:9092"}``. SASL/SSL
settings go in the same dict and reach librdkafka unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.sdk import BaseHook

from spotify_pipeline.topic import DEFAULT_TOPIC, INGEST_TOPIC_ENV, ingest_topic

if TYPE_CHECKING:
    from spotify_pipeline._core import KafkaConfig

__all__ = ["DEFAULT_TOPIC", "INGEST_TOPIC_ENV", "SpotifyKafkaHook", "ingest_topic"]


class SpotifyKafkaHook(BaseHook):
    conn_name_attr = "kafka_conn_id"
    default_conn_name = "kafka_default"
    hook_name = "Spotify Pipeline Kafka"

    def __init__(self, kafka_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.kafka_conn_id = kafka_conn_id

    def client_config(self) -> dict[str, str]:
        conn = self.get_connection(self.kafka_conn_id)
        extra = conn.extra_dejson
        # Only plain settings: callables (oauth_cb, ...) cannot cross into librdkafka via Rust.
        config = {k: str(v) for k, v in extra.items() if not callable(v)}
        if "bootstrap.servers" not in config:
            raise ValueError(
                f"Kafka connection {self.kafka_conn_id!r} has no 'bootstrap.servers' in its extra"
            )
        return config

    def kafka_config(self, topic: str, timeout_s: int = 30) -> KafkaConfig:
        return {"client": self.client_config(), "topic": topic, "timeout_s": int(timeout_s)}

    def test_connection(self) -> tuple[bool, str]:
        """The connection form's Test button: asks the bootstrap servers for the cluster's
        brokers (10 s at most), with the connection's SASL/SSL settings."""
        from spotify_pipeline import SpotifyPipelineError, _core

        try:
            brokers = _core.kafka_brokers(self.kafka_config("-", timeout_s=10))
        except (SpotifyPipelineError, ValueError) as e:
            return False, str(e)
        return True, f"Kafka answered: {len(brokers)} broker(s), {', '.join(brokers)}"
