"""SpotifyProducerOperator: simulate listening events and produce them to Kafka (Rust)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from airflow.sdk import BaseOperator, Context

from spotify_pipeline import _core
from spotify_pipeline.hooks.kafka import SpotifyKafkaHook
from spotify_pipeline.hooks.lake import LakeHook
from spotify_pipeline.progress import log_progress
from spotify_pipeline.simulation import optional, sim_config


class SpotifyProducerOperator(BaseOperator):
    """Simulates listening events from ``seed`` and produces them to ``topic``, keyed by user,
    with an idempotent acks=all producer.

    The same seed and settings give the same records, byte for byte. Bounded by ``events``, by
    ``duration_s``, or both; paced by ``rate_per_s`` or by simulated time at ``speedup``
    (1 = real time), or as fast as the broker allows. ``faults`` injects late, duplicate and
    malformed records at the rates given. With ``lake_url`` set, the catalog (songs, artists,
    users, subscriptions) is also published to the Delta tables ``reference/<table>`` in the lake, once per catalog.

    Returns a summary XCom: records, bytes, per-partition offset ranges, rate, the simulator's
    ground truth (``sim``: valid, duplicates, late, malformed by class) and its settings
    (``sim_config``), from which anyone can regenerate the same records.
    """

    template_fields: Sequence[str] = (
        "topic", "events", "duration_s", "seed", "start", "rate_per_s", "speedup", "users", "songs", "faults", "lake_url",
    )
    ui_color = "#1DB954"

    def __init__(
        self,
        *,
        kafka_conn_id: str = SpotifyKafkaHook.default_conn_name,
        topic: str = "spotify_events",
        events: int | str | None = 10_000,
        duration_s: float | str | None = None,
        seed: int | str | None = None,
        start: str | None = None,
        rate_per_s: float | str | None = None,
        speedup: float | str | None = None,
        users: int | str | None = None,
        songs: int | str | None = None,
        catalog_seed: int | None = None,
        zipf_s: float | None = None,
        sessions_per_user_per_day: float | None = None,
        faults: dict[str, Any] | None = None,
        create_topic: bool = True,
        partitions: int = 3,
        compression: _core.Compression = "lz4",
        timeout_s: int = 30,
        lake_url: str | None = None,
        lake_conn_id: str | None = LakeHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.kafka_conn_id = kafka_conn_id
        self.topic = topic
        self.events = events
        self.duration_s = duration_s
        self.seed = seed
        self.start = start
        self.rate_per_s = rate_per_s
        self.speedup = speedup
        self.users = users
        self.songs = songs
        self.catalog_seed = catalog_seed
        self.zipf_s = zipf_s
        self.sessions_per_user_per_day = sessions_per_user_per_day
        self.faults = faults
        self.create_topic = create_topic
        self.partitions = partitions
        self.compression = compression
        self.timeout_s = timeout_s
        self.lake_url = lake_url
        self.lake_conn_id = lake_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        events = optional(self.events, int)
        if events is not None and events < 0:
            raise ValueError(f"events must be >= 0, got {events}")
        # A rate or speed-up of 0 (a form's "unset") means as fast as possible.
        rate = optional(self.rate_per_s, float) or None
        speedup = optional(self.speedup, float) or None
        dag_run = context.get("dag_run")
        sim = sim_config(
            seed=self.seed, start=self.start, events=events, users=self.users, songs=self.songs,
            catalog_seed=self.catalog_seed, zipf_s=self.zipf_s,
            sessions_per_user_per_day=self.sessions_per_user_per_day, faults=self.faults,
            now=getattr(dag_run, "run_after", None) or datetime.now(UTC),
        )
        reference: _core.ReferenceSummary | None = None
        if self.lake_url:
            lake = LakeHook(self.lake_url, self.lake_conn_id).lake_config()
            reference = _core.publish_reference(sim, lake)
            self.log.info("Reference data (catalog %s): %s", reference["tables"][0]["catalog"], ", ".join(f"{t['table']} {t['rows']} rows{'' if t['published'] else ' (already there)'}" for t in reference["tables"]))
        kafka = SpotifyKafkaHook(self.kafka_conn_id).kafka_config(self.topic, self.timeout_s)
        options: _core.ProduceOptions = {
            "count": events, "duration_s": optional(self.duration_s, float), "rate_per_s": rate, "speedup": speedup,
            "create_topic": self.create_topic, "partitions": self.partitions, "replication": 1,
            "compression": self.compression,
        }
        self.log.info(
            "Producing %s (seed %s, faults %s) to %s at %s",
            f"{events:,} events" if events is not None else f"for {options['duration_s']}s",
            sim["seed"], sim["faults"], self.topic, kafka["client"]["bootstrap.servers"],
        )
        produced = _core.produce(kafka, sim, options, log_progress(self.log))
        summary: dict[str, Any] = {**produced, "sim_config": sim, "reference": reference}
        st = summary["sim"]
        self.log.info(
            "Produced %s records (%.1f MB) in %.2fs, %s/s: %s valid (%s duplicates, %s late), %s malformed %s",
            f"{summary['events']:,}", summary["bytes"] / 1e6, summary["elapsed_s"], f"{summary['events_per_s']:,.0f}",
            f"{st['valid']:,}", st["duplicates"], st["late"], st["malformed"], st["malformed_by_class"],
        )
        return summary
