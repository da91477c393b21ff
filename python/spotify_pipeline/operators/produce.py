"""SpotifyProducerOperator: simulate listening events and produce them to Kafka (Rust)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.sdk import BaseOperator, Context

from spotify_pipeline import _core
from spotify_pipeline.hooks.kafka import SpotifyKafkaHook
from spotify_pipeline.progress import log_progress


def simulated_start_ms(start: str | datetime | None, span_minutes: int, now: datetime) -> int:
    """The simulated time of the first session: ``start`` if given, else ``span`` before now."""
    if start is None or start == "":
        t = now.replace(second=0, microsecond=0) - timedelta(minutes=span_minutes)
    elif isinstance(start, datetime):
        t = start
    else:
        t = datetime.fromisoformat(str(start).replace("Z", "+00:00"))
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return int(t.timestamp() * 1000)


class SpotifyProducerOperator(BaseOperator):
    """Simulates ``events`` listening events from ``seed`` and produces them to ``topic``.

    The same seed and settings give the same events, byte for byte. Returns a summary XCom:
    events, bytes, per-partition offset ranges, rate.

    :param kafka_conn_id: a ``kafka`` connection; its extra is the librdkafka config.
    :param topic: created with ``partitions`` partitions if it does not exist.
    :param start: simulated time of the first session (ISO 8601); default: ``span_minutes``
        before the run.
    """

    template_fields: Sequence[str] = ("topic", "events", "seed", "start", "span_minutes", "users", "songs")
    ui_color = "#1DB954"

    def __init__(
        self,
        *,
        kafka_conn_id: str = SpotifyKafkaHook.default_conn_name,
        topic: str = "spotify_events",
        events: int | str = 10_000,
        seed: int | str = 42,
        start: str | None = None,
        span_minutes: int | str = 180,
        users: int | str = 500,
        songs: int | str = 2_000,
        partitions: int = 3,
        compression: str = "lz4",
        timeout_s: int = 30,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.kafka_conn_id = kafka_conn_id
        self.topic = topic
        self.events = events
        self.seed = seed
        self.start = start
        self.span_minutes = span_minutes
        self.users = users
        self.songs = songs
        self.partitions = partitions
        self.compression = compression
        self.timeout_s = timeout_s

    def execute(self, context: Context) -> dict[str, Any]:
        events = int(self.events)
        if events < 0:
            raise ValueError(f"events must be >= 0, got {events}")
        span = int(self.span_minutes)
        dag_run = context.get("dag_run")
        now = getattr(dag_run, "run_after", None) or datetime.now(timezone.utc)
        sim = {
            "seed": int(self.seed),
            "start_ms": simulated_start_ms(self.start, span, now),
            "span_ms": span * 60_000,
            "users": int(self.users),
            "songs": int(self.songs),
            "zipf_s": 1.1,
        }
        kafka = SpotifyKafkaHook(self.kafka_conn_id).kafka_config(self.topic, self.timeout_s)
        options = {"count": events, "partitions": self.partitions, "replication": 1, "compression": self.compression}
        self.log.info("Producing %s events (seed %s) to %s at %s", f"{events:,}", sim["seed"], self.topic, kafka["client"]["bootstrap.servers"])
        summary = _core.produce(kafka, sim, options, log_progress(self.log))
        # The exact simulation settings, so anyone can regenerate (and reconcile) these events.
        summary["sim"] = sim
        summary["seed"] = sim["seed"]
        self.log.info(
            "Produced %s events (%.1f MB) in %.2fs: %s events/s",
            f"{summary['events']:,}", summary["bytes"] / 1e6, summary["elapsed_s"], f"{summary['events_per_s']:,.0f}",
        )
        return summary
