"""Independent readers for reconciling counts by event_id: they read the lake's Delta tables with
boto3 and pyarrow (delta_reader, not delta-rs) and the warehouse with plain DuckDB SQL, not with
our Rust core, so a bug there cannot hide itself."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from delta_reader import Action, S3Store, commits, load_snapshot, read_table, where


@dataclass(frozen=True)
class Stack:
    bootstrap: str
    s3_endpoint: str
    access_key: str
    secret_key: str
    bucket: str
    kafka_libs: str
    # The broker's SASL/PLAIN listener (scripts/stack.sh): its address, user and password.
    sasl_bootstrap: str = ""
    sasl_user: str = ""
    sasl_password: str = ""

    def kafka(self, topic: str, timeout_s: int = 30) -> dict[str, Any]:
        return {"client": {"bootstrap.servers": self.bootstrap}, "topic": topic, "timeout_s": timeout_s}

    def lake(self, prefix: str) -> dict[str, Any]:
        return {
            "url": f"s3://{self.bucket}/{prefix}",
            "options": {
                "aws_endpoint": self.s3_endpoint,
                "aws_allow_http": "true",
                "aws_access_key_id": self.access_key,
                "aws_secret_access_key": self.secret_key,
                "aws_region": "us-east-1",
            },
        }

    def s3(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.s3_endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
        )


def local_stack() -> Stack:
    """The real local stack (scripts/stack.sh), started if it is not running yet."""
    import subprocess
    from pathlib import Path

    script = str(Path(__file__).resolve().parents[2] / "scripts" / "stack.sh")
    subprocess.run([script, "up"], check=True, timeout=900)
    out = subprocess.run([script, "env"], check=True, capture_output=True, text=True).stdout
    env = {}
    for line in out.splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        env[key] = value.strip("'")
    return Stack(
        bootstrap=env["SPOTIFY_KAFKA_BOOTSTRAP"],
        s3_endpoint=env["SPOTIFY_S3_ENDPOINT"],
        access_key=env["SPOTIFY_S3_ACCESS_KEY"],
        secret_key=env["SPOTIFY_S3_SECRET_KEY"],
        bucket=env["SPOTIFY_LAKE_BUCKET"],
        kafka_libs=env["SPOTIFY_KAFKA_LIBS"],
        sasl_bootstrap=env["SPOTIFY_KAFKA_SASL_BOOTSTRAP"],
        sasl_user=env["SPOTIFY_KAFKA_SASL_USER"],
        sasl_password=env["SPOTIFY_KAFKA_SASL_PASSWORD"],
    )


def list_keys(s3, bucket: str, prefix: str) -> list[str]:
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return sorted(keys)


def _table(stack: Stack, prefix: str, dataset: str, quarantine: bool) -> tuple[S3Store, str]:
    """The lake under `prefix` and the root of its bronze (or quarantine) Delta table in it."""
    return S3Store(stack.s3(), stack.bucket, prefix), f"bronze/{dataset}{'_quarantine' if quarantine else ''}"


def committed_bronze(stack: Stack, prefix: str, topic: str, dataset: str = "spotify_events",
                     exclude: tuple[str, ...] = ()) -> pa.Table:
    """Every row of every active file of the bronze table for `topic`, with its file key
    (without the `exclude` columns)."""
    return where(read_table(*_table(stack, prefix, dataset, False), exclude=exclude), "kafka_topic", topic)


def quarantined(stack: Stack, prefix: str, topic: str, dataset: str = "spotify_events") -> list[dict[str, Any]]:
    """The quarantine table's rows for `topic`, as dicts."""
    return where(read_table(*_table(stack, prefix, dataset, True)), "kafka_topic", topic).to_pylist()


def txn_versions(stack: Stack, prefix: str, dataset: str = "spotify_events",
                 quarantine: bool = False) -> dict[str, int]:
    """`topic/partition` -> next offset, as the table's latest txn actions record it."""
    snap = load_snapshot(*_table(stack, prefix, dataset, quarantine))
    return dict(snap.txns) if snap else {}


def bronze_commits(stack: Stack, prefix: str, dataset: str = "spotify_events",
                   quarantine: bool = False) -> list[tuple[int, list[Action]]]:
    """Every commit of the bronze (or quarantine) table, in version order."""
    return commits(*_table(stack, prefix, dataset, quarantine))


def duplicates(values: list[Any]) -> dict[Any, int]:
    return {v: n for v, n in Counter(values).items() if n > 1}


def topic_records(bootstrap: str, topic: str, timeout_s: float = 60) -> list[tuple[int, int, bytes | None, bytes]]:
    """Every record in the topic as (partition, offset, key, value), read with confluent-kafka
    (librdkafka through its own Python binding, not our core) from the start to the high
    watermarks taken first."""
    import time

    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reconcile-{topic}", "enable.auto.commit": False})
    try:
        parts = sorted(c.list_topics(topic, timeout=10).topics[topic].partitions)
        ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
        c.assign([TopicPartition(topic, p, 0) for p in parts if ends[p] > 0])
        out: list[tuple[int, int, bytes | None, bytes]] = []
        left = {p for p in parts if ends[p] > 0}
        deadline = time.monotonic() + timeout_s
        while left:
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {topic}: partitions {sorted(left)} short of their high watermarks")
            for m in c.consume(10_000, timeout=1):
                if m.error():
                    raise RuntimeError(m.error())
                if m.offset() < ends[m.partition()]:
                    out.append((m.partition(), m.offset(), m.key(), m.value()))
                if m.offset() + 1 >= ends[m.partition()]:
                    left.discard(m.partition())
        return out
    finally:
        c.close()
