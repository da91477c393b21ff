"""KafkaDrainOperator: drain a topic into the bronze lake, exactly once (Rust)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from airflow.sdk import BaseOperator, Context
from airflow.sdk.exceptions import AirflowSkipException

from spotify_pipeline import _core
from spotify_pipeline.hooks.kafka import SpotifyKafkaHook
from spotify_pipeline.hooks.lake import LakeHook
from spotify_pipeline.progress import log_progress
from spotify_pipeline.simulation import optional

MAX_FILES_IN_XCOM = 50
# The consumer group the drain names itself by (offsets live in the Delta txns, not the group).
DEFAULT_GROUP_ID = "spotify-pipeline-drain"
# With no record for this long, a partition counts as drained up to its high watermark.
DEFAULT_IDLE_TIMEOUT_S = 60


def partition_sets(partitions: list[int], n: int) -> list[list[int]]:
    """Splits partitions round-robin into at most ``n`` non-empty sets, one per mapped drain."""
    if n < 1:
        raise ValueError(f"need at least one partition set, got {n}")
    sets = [sorted(partitions)[i::n] for i in range(n)]
    return [s for s in sets if s]


def topic_partition_sets(topic: str, n: int, kafka_conn_id: str = SpotifyKafkaHook.default_conn_name) -> list[list[int]]:
    """The partitions of ``topic`` (asked of the broker) in at most ``n`` sets (:func:`partition_sets`)."""
    return partition_sets(_core.topic_partitions(SpotifyKafkaHook(kafka_conn_id).kafka_config(topic)), int(n))


def share_partitions(kafka: _core.KafkaConfig, share: Sequence[int]) -> list[int]:
    """The partitions of ``share`` = [index, count]: that set of :func:`partition_sets` of the
    topic's partitions, asked of the broker now (empty when there are fewer partitions than shares)."""
    index, count = (int(x) for x in share)
    if not 0 <= index < count:
        raise ValueError(f"partition_share must be [index, count] with 0 <= index < count, not {list(share)!r}")
    sets = partition_sets(_core.topic_partitions(kafka), count)
    return sets[index] if index < len(sets) else []


def drain_topic(
    kafka: _core.KafkaConfig, lake: _core.LakeConfig, options: _core.DrainOptions, log: Any, progress: _core.ProgressCallback | None
) -> dict[str, Any]:
    """Runs the core's drain and logs what it did: what the operator and ``spotify-pipeline drain`` share."""
    log.info("Draining %s into %s", kafka["topic"], lake["url"])
    summary = _core.drain(kafka, lake, options, progress)
    for w in summary["warnings"]:
        log.warning("%s", w)
    log.info(
        "Drained %s rows in %d batches, %d Delta commits (%.1f/s); quarantined %s %s",
        f"{summary['rows']:,}", len(summary["batches"]), summary["commits"], summary["commits_per_s"],
        f"{summary['quarantined']:,}", summary["quarantined_by_reason"],
    )
    left = [p["partition"] for p in summary["partitions"] if p["left_to_other_drain"]]
    if left:
        log.info("Partitions %s were being drained by another run, which committed first: left to it", left)
    return dict(summary)


def merge_drain_summaries(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """One summary for the XComs of a drain mapped over partition sets."""
    if len(summaries) == 1:
        return summaries[0]
    reasons: dict[str, int] = {}
    for s in summaries:
        for k, v in s["quarantined_by_reason"].items():
            reasons[k] = reasons.get(k, 0) + v
    return {
        "topic": summaries[0]["topic"],
        "rows": sum(s["rows"] for s in summaries),
        "quarantined": sum(s["quarantined"] for s in summaries),
        "quarantined_by_reason": reasons,
        "batches": [b for s in summaries for b in s["batches"]],
        "commits": sum(s["commits"] for s in summaries),
        "table": summaries[0]["table"],
        "quarantine_table": summaries[0]["quarantine_table"],
        "partitions": sorted((p for s in summaries for p in s["partitions"]), key=lambda p: p["partition"]),
        "files_total": sum(s["files_total"] for s in summaries),
        "files": [f for s in summaries for f in s["files"]][:MAX_FILES_IN_XCOM],
        "bytes": sum(s["bytes"] for s in summaries),
        "warnings": [w for s in summaries for w in s["warnings"]],
        "lost_to_retention": sum(s["lost_to_retention"] for s in summaries),
        "mapped_tasks": len(summaries),
    }


class KafkaDrainOperator(BaseOperator):
    """Drains ``topic`` up to the high watermarks seen at start into the lake's Delta tables
    ``bronze/<dataset>`` (valid events) and ``bronze/<dataset>_quarantine`` (refused records, with
    their reason), partitioned by arrival ``date``/``hour``.

    ``partitions`` limits it to a set of partitions, so the drain can be mapped:
    ``KafkaDrainOperator.partial(...).expand(partitions=[[0, 3], [1, 4], [2, 5]])`` runs one task
    per set in parallel (see :func:`partition_sets`). ``partition_share=[i, n]`` takes the i-th
    of ``n`` such sets of the topic's partitions, asked of the broker when the task starts:
    ``.expand(partition_share=[[0, 2], [1, 2]])`` maps the drain with no planning task before it
    (one task start less on the way of every record; a share with no partition is skipped).

    The calling thread only consumes; ``workers`` threads (default: one per core, at most 4)
    parse and encode batches in parallel while tasks upload them; the uploaded batches of every
    partition are committed together, at most once per ``commit_interval_ms``, each partition's in
    offset order. Memory is bounded by ``buffer_max_bytes`` (open batches), ``batch_max_bytes``
    per batch on its way, and librdkafka's prefetch settings in the Kafka connection's extra.

    ``raw=True`` also keeps each record's bytes, as they came, in the ``raw`` column.

    Records that Kafka's retention deleted before they were drained fail the task with the
    partitions and offsets named, unless ``allow_data_loss=True`` (then they are skipped and
    counted in ``lost_to_retention``). A partition whose lake offset is above its high watermark
    (the topic was deleted and created again) fails the task unless ``reset_offsets=True``.

    Each commit carries a Delta txn per topic-partition (``<topic>/<partition>``, version = the
    next offset) and happens only if the txn is where this drain expects it: a re-run after any
    failure resumes from the txns, and drains racing on one partition cannot both commit a
    range (the loser leaves the partition to the winner, and its files never become visible).
    Returns a summary XCom: rows, files, quarantined by reason, offset ranges, commits, lag left.
    """

    template_fields: Sequence[str] = (
        "topic", "lake_url", "group_id", "partitions", "partition_share", "max_records", "max_seconds", "dataset",
    )
    ui_color = "#E8F5E9"

    def __init__(
        self,
        *,
        lake_url: str,
        kafka_conn_id: str = SpotifyKafkaHook.default_conn_name,
        lake_conn_id: str | None = LakeHook.default_conn_name,
        topic: str = "spotify_events",
        dataset: str = "spotify_events",
        raw: bool = False,
        group_id: str = DEFAULT_GROUP_ID,
        partitions: list[int] | None = None,
        partition_share: Sequence[int] | None = None,
        batch_max_records: int | None = None,
        batch_max_bytes: int | None = None,
        buffer_max_bytes: int | None = None,
        workers: int | None = None,
        commit_interval_ms: int | None = None,
        max_records: int | str | None = None,
        max_seconds: float | str | None = None,
        idle_timeout_s: int = DEFAULT_IDLE_TIMEOUT_S,
        timeout_s: int = 30,
        allow_data_loss: bool = False,
        reset_offsets: bool = False,
        **kwargs: Any,
    ) -> None:
        if partitions and partition_share:
            raise ValueError("give partitions or partition_share, not both")
        super().__init__(**kwargs)
        self.lake_url = lake_url
        self.kafka_conn_id = kafka_conn_id
        self.lake_conn_id = lake_conn_id
        self.topic = topic
        self.dataset = dataset
        self.raw = raw
        self.group_id = group_id
        self.partitions = partitions
        self.partition_share = partition_share
        # None leaves the core's default (README, "KafkaDrainOperator"), so it is written once.
        self.tuning = {
            "batch_max_records": batch_max_records,
            "batch_max_bytes": batch_max_bytes,
            "buffer_max_bytes": buffer_max_bytes,
            "workers": workers,
            "commit_interval_ms": commit_interval_ms,
        }
        self.max_records = max_records
        self.max_seconds = max_seconds
        self.idle_timeout_s = idle_timeout_s
        self.timeout_s = timeout_s
        self.allow_data_loss = allow_data_loss
        self.reset_offsets = reset_offsets

    def execute(self, context: Context) -> dict[str, Any]:
        kafka = SpotifyKafkaHook(self.kafka_conn_id).kafka_config(self.topic, self.timeout_s)
        lake = LakeHook(self.lake_url, self.lake_conn_id).lake_config()
        partitions = [int(p) for p in (self.partitions or [])]
        if self.partition_share:
            partitions = share_partitions(kafka, self.partition_share)
            if not partitions:
                # More shares than partitions: this one has none (an empty list would mean all).
                raise AirflowSkipException(f"share {self.partition_share} of {self.topic}'s partitions is empty")
            self.log.info("Share %s of %s's partitions: %s", self.partition_share, self.topic, partitions)
        options: _core.DrainOptions = {
            "group_id": self.group_id,
            "partitions": partitions,
            "dataset": self.dataset,
            "raw": bool(self.raw),
            # Tuning keys are the core's option names (set in __init__): not checkable as TypedDict keys.
            **cast("_core.DrainOptions", {k: v for k, v in self.tuning.items() if v is not None}),
            "max_records": optional(self.max_records, int),
            "max_seconds": optional(self.max_seconds, float),
            "idle_timeout_s": self.idle_timeout_s,
            "allow_data_loss": bool(self.allow_data_loss),
            "reset_offsets": bool(self.reset_offsets),
        }
        summary = drain_topic(kafka, lake, options, self.log, log_progress(self.log))
        files = summary.pop("files")
        summary["files_total"] = len(files)
        summary["files"] = files[:MAX_FILES_IN_XCOM]
        return summary
