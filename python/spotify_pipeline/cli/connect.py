"""What a command connects to, from its flags and the environment. No secret is ever an
argument: a process's arguments are visible to every user of the machine (``ps``).

- Kafka: ``--bootstrap``, and any librdkafka settings (SASL/SSL included) in ``--kafka-config
  FILE``, one ``key=value`` a line, as Kafka's own tools take ``--command-config``.
- The lake: ``--lake-url``; an ``s3://`` lake's credentials and endpoint come from the AWS
  CLI's variables: ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL``
  (MinIO: ``http://127.0.0.1:9000``), ``AWS_REGION``.
- The warehouse: ``--duckdb PATH`` (the embedded default), or ``--warehouse-conn-id ID``, an
  Airflow connection (``duckdb`` or ``snowflake``), for example from ``AIRFLOW_CONN_<ID>``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

from spotify_pipeline.topic import ingest_topic

if TYPE_CHECKING:
    from spotify_pipeline._core import KafkaConfig, LakeConfig
    from spotify_pipeline.hooks.warehouse import Warehouse

# The hooks (and so Airflow, ~3 s to import) load only for a command that uses the lake or the
# warehouse: `simulate` and `produce` start in a fraction of a second.

# The local stack's broker, as scripts/stack.sh starts it.
DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
LAKE_URL_ENV = "SPOTIFY_LAKE_URL"
DUCKDB_PATH_ENV = "SPOTIFY_DUCKDB_PATH"


def add_kafka_args(p: argparse.ArgumentParser, timeout_s: int = 30) -> None:
    g = p.add_argument_group("Kafka")
    g.add_argument("--bootstrap", default=DEFAULT_BOOTSTRAP, help="bootstrap servers (default %(default)s)")
    g.add_argument("--topic", default=ingest_topic(), help="default %(default)s (SPOTIFY_INGEST_TOPIC)")
    g.add_argument("--kafka-config", metavar="FILE", help="librdkafka settings, key=value a line (SASL/SSL secrets go here)")
    g.add_argument("--timeout-s", type=int, default=timeout_s, help="how long to wait for a broker (default %(default)s)")


def read_kafka_config(path: str) -> dict[str, str]:
    """``key=value`` lines (``#`` comments, blank lines skipped), as a Java client's properties."""
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise ValueError(f"--kafka-config {path}: {e.strerror}") from None
    config: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--kafka-config {path}, line {n}: not key=value")
        config[key.strip()] = value.strip()
    return config


def kafka_config(args: argparse.Namespace) -> KafkaConfig:
    client: dict[str, str] = {"bootstrap.servers": args.bootstrap}
    if args.kafka_config:
        client.update(read_kafka_config(args.kafka_config))
    return {"client": client, "topic": args.topic, "timeout_s": int(args.timeout_s)}


def add_lake_args(p: argparse.ArgumentParser) -> None:
    from spotify_pipeline.hooks.lake import DEFAULT_LAKE_URL

    g = p.add_argument_group("lake")
    g.add_argument("--lake-url", default=os.environ.get(LAKE_URL_ENV, DEFAULT_LAKE_URL),
                   help=f"s3://bucket[/prefix] or file:///dir (default %(default)s, {LAKE_URL_ENV}); "
                        "credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL, AWS_REGION")
    g.add_argument("--dataset", default="spotify_events", help="the tables bronze/<dataset>[_quarantine] (default %(default)s)")


def lake_config(args: argparse.Namespace) -> LakeConfig:
    from spotify_pipeline.hooks.lake import s3_options

    url = args.lake_url
    if not url.startswith(("s3://", "file://")):
        raise ValueError(f"--lake-url must be s3://bucket[/prefix] or file:///dir, not {url!r}")
    if not url.startswith("s3://"):
        return {"url": url, "options": {}}
    env = os.environ
    options = s3_options(env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY"), env.get("AWS_ENDPOINT_URL"),
                         env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"))
    return {"url": url, "options": options}


def add_warehouse_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("warehouse").add_mutually_exclusive_group()
    g.add_argument("--duckdb", metavar="PATH", default=os.environ.get(DUCKDB_PATH_ENV),
                   help=f"the DuckDB warehouse file (default {DUCKDB_PATH_ENV})")
    g.add_argument("--warehouse-conn-id", metavar="ID", help="an Airflow connection, duckdb or snowflake (e.g. AIRFLOW_CONN_<ID>)")
    p.add_argument("--schema", default="bronze", help="the warehouse's bronze schema (default %(default)s)")
    p.add_argument("--table", default="spotify_events", help="the warehouse's bronze table (default %(default)s)")


def warehouse(args: argparse.Namespace) -> Warehouse:
    from spotify_pipeline.hooks.duckdb import DuckDBWarehouseHook
    from spotify_pipeline.hooks.warehouse import warehouse_hook

    if args.warehouse_conn_id:
        return warehouse_hook(args.warehouse_conn_id, args.schema, args.table)
    if not args.duckdb:
        raise ValueError(f"no warehouse: give --duckdb PATH (or set {DUCKDB_PATH_ENV}), or --warehouse-conn-id")
    return DuckDBWarehouseHook(schema=args.schema, table=args.table, path=args.duckdb)


