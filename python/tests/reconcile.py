"""Independent readers for reconciling counts by event_id: they read the lake with boto3 and
pyarrow and the warehouse with plain DuckDB SQL, not with our Rust core, so a bug there cannot
hide itself."""

from __future__ import annotations

import io
import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq


@dataclass(frozen=True)
class Stack:
    bootstrap: str
    s3_endpoint: str
    access_key: str
    secret_key: str
    bucket: str
    kafka_libs: str

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


def list_keys(s3, bucket: str, prefix: str) -> list[str]:
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return sorted(keys)


def manifests(stack: Stack, prefix: str, topic: str) -> list[dict[str, Any]]:
    s3 = stack.s3()
    out = []
    for key in list_keys(s3, stack.bucket, f"{prefix}/bronze/_manifests/{topic}/"):
        out.append(json.loads(s3.get_object(Bucket=stack.bucket, Key=key)["Body"].read()))
    return out


def committed_bronze(stack: Stack, prefix: str, topic: str) -> pa.Table:
    """Every row of every bronze file that a committed manifest lists, with its file key."""
    s3 = stack.s3()
    tables = []
    for m in manifests(stack, prefix, topic):
        for f in m["files"]:
            body = s3.get_object(Bucket=stack.bucket, Key=f"{prefix}/{f['key']}")["Body"].read()
            t = pq.read_table(io.BytesIO(body))
            assert t.num_rows == f["rows"], f"{f['key']}: {t.num_rows} rows, manifest says {f['rows']}"
            tables.append(t.append_column("file_key", pa.array([f["key"]] * t.num_rows)))
    if not tables:
        return pa.table({"event_id": pa.array([], pa.string())})
    return pa.concat_tables(tables)


def quarantined(stack: Stack, prefix: str, topic: str) -> list[dict[str, Any]]:
    s3 = stack.s3()
    rows = []
    for m in manifests(stack, prefix, topic):
        for f in m["quarantine_files"]:
            body = s3.get_object(Bucket=stack.bucket, Key=f"{prefix}/{f['key']}")["Body"].read()
            rows += [json.loads(line) for line in body.decode().splitlines() if line]
    return rows


def duplicates(values: list[Any]) -> dict[Any, int]:
    return {v: n for v, n in Counter(values).items() if n > 1}
