"""Shared bits of the benchmarks: the local stack's settings and Kafka's own tools."""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def stack_env() -> dict[str, str]:
    """Starts the local stack if needed and returns its settings (scripts/stack.sh env)."""
    subprocess.run([str(ROOT / "scripts" / "stack.sh"), "up"], check=True)
    out = subprocess.run([str(ROOT / "scripts" / "stack.sh"), "env"], check=True, capture_output=True, text=True).stdout
    env = {}
    for line in out.splitlines():
        k, _, v = line.removeprefix("export ").partition("=")
        env[k] = v.strip("'")
    return env


def fresh_topic(prefix: str) -> str:
    return f"bench_{prefix}_{uuid.uuid4().hex[:8]}"


def kafka_tool(env: dict[str, str], main_class: str, *args: str) -> str:
    """Runs one of Kafka's own tools (kafka-tools jar) and returns its output."""
    cmd = ["java", "-Xmx1g", "-cp", f"{env['SPOTIFY_KAFKA_LIBS']}/*", main_class, *args]
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "KAFKA_LOG4J_OPTS": ""})
    if r.returncode != 0:
        raise RuntimeError(f"{main_class} failed: {r.stderr[-2000:]}")
    return r.stdout


def create_topic(env: dict[str, str], topic: str, partitions: int = 3) -> None:
    kafka_tool(env, "org.apache.kafka.tools.TopicCommand", "--bootstrap-server", env["SPOTIFY_KAFKA_BOOTSTRAP"],
               "--create", "--topic", topic, "--partitions", str(partitions), "--replication-factor", "1")


def delete_topic(env: dict[str, str], topic: str) -> None:
    kafka_tool(env, "org.apache.kafka.tools.TopicCommand", "--bootstrap-server", env["SPOTIFY_KAFKA_BOOTSTRAP"], "--delete", "--topic", topic)


def s3_client(env: dict[str, str]):
    import boto3

    return boto3.client("s3", endpoint_url=env["SPOTIFY_S3_ENDPOINT"], aws_access_key_id=env["SPOTIFY_S3_ACCESS_KEY"],
                        aws_secret_access_key=env["SPOTIFY_S3_SECRET_KEY"], region_name="us-east-1")


def delete_prefix(env: dict[str, str], prefix: str) -> None:
    """Removes what a benchmark wrote under `prefix` of the lake bucket (outside the timing)."""
    s3, bucket = s3_client(env), env["SPOTIFY_LAKE_BUCKET"]
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix.rstrip("/") + "/"):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})


def ratio_table(rows: list[tuple[str, float, float]], reference: str) -> str:
    """rows: (name, records/s, MB/s). Ratios are against the row named `reference`."""
    ref = next(r for r in rows if r[0] == reference)
    lines = [f"| path | records/s | MB/s | × {reference} |", "|---|---:|---:|---:|"]
    for name, rps, mbps in rows:
        lines.append(f"| {name} | {rps:,.0f} | {mbps:,.1f} | {rps / ref[1]:.2f} |")
    return "\n".join(lines)


def parse_producer_performance(out: str) -> tuple[float, float]:
    """(records/s, MB/s) from ProducerPerformance's last summary line."""
    m = re.findall(r"([\d.]+) records/sec \(([\d.]+) MB/sec\)", out)
    if not m:
        raise RuntimeError(f"no summary in ProducerPerformance output: {out[-500:]}")
    rps, mbps = m[-1]
    return float(rps), float(mbps)
