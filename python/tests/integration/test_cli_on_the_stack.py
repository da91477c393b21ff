"""The command line outside Airflow, as a cron job runs it, on the real stack: produce, lag,
drain (two shares, one through the broker's SASL listener with its secrets in a config file),
stage into DuckDB twice, maintain; checked with readers that are not the code under test
(confluent-kafka for the topic, our own Delta log reader for the lake, DuckDB's SQL for the
warehouse), and the exit codes that tell bad input from an unreachable service."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass

import duckdb
import pytest

from reconcile import committed_bronze, quarantined, topic_records

pytestmark = pytest.mark.integration


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(capsys, monkeypatch, stack):
    """Runs the command line in this process (each command as `python -m spotify_pipeline.cli`
    would, without ~3 s of interpreter and Airflow start), with the AWS CLI's variables for the
    lake in the environment, as a cron job's holds them."""
    from spotify_pipeline.cli import main

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", stack.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", stack.secret_key)
    monkeypatch.setenv("AWS_ENDPOINT_URL", stack.s3_endpoint)
    monkeypatch.delenv("SPOTIFY_DUCKDB_PATH", raising=False)

    def run(*args: str, **env: str) -> Ran:
        with monkeypatch.context() as m:
            for k, v in env.items():
                m.setenv(k, v)
            code = main(list(args))
        out = capsys.readouterr()
        return Ran(code, out.out, out.err)

    return run


def test_produce_lag_drain_stage_maintain_exactly_once(stack, topic, lake_prefix, cli, tmp_path):
    lake = ["--lake-url", stack.lake(lake_prefix)["url"]]
    kafka = ["--bootstrap", stack.bootstrap, "--topic", topic]
    produced = cli("produce", *kafka, "--events", "6000", "--partitions", "4", "--malformed-rate", "0.02",
                   "--duplicate-rate", "0.05", "--seed", "11")
    assert produced.returncode == 0, produced.stderr
    records = topic_records(stack.bootstrap, topic)

    due = cli("lag", *kafka, *lake, "--min-lag", "1", "--json")
    assert due.returncode == 0, due.stderr
    assert json.loads(due.stdout)["lag"] == len(records) and json.loads(due.stdout)["due"] is True

    # Share 0 of 2 with plain Kafka; share 1 through the SASL listener, its password in a file.
    first = cli("drain", *kafka, *lake, "--partition-share", "0/2", "--json")
    assert first.returncode == 0, first.stderr
    config = tmp_path / "client.properties"
    config.write_text("# the broker's SASL/PLAIN listener\nsecurity.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\n"
                      f"sasl.username={stack.sasl_user}\nsasl.password={stack.sasl_password}\n")
    second = cli("drain", "--bootstrap", stack.sasl_bootstrap, "--topic", topic, "--kafka-config", str(config), *lake,
                 "--partition-share", "1/2", "--json")
    assert second.returncode == 0, second.stderr
    assert stack.sasl_password not in second.stdout + second.stderr
    a, b = json.loads(first.stdout), json.loads(second.stdout)
    assert {p["partition"] for p in a["partitions"]} == {0, 2} and {p["partition"] for p in b["partitions"]} == {1, 3}

    bronze = committed_bronze(stack, lake_prefix, topic, exclude=("raw",))
    refused = quarantined(stack, lake_prefix, topic)
    keys = sorted(zip(bronze["kafka_partition"].to_pylist(), bronze["kafka_offset"].to_pylist(), strict=True))
    keys += [(q["kafka_partition"], q["kafka_offset"]) for q in refused]
    assert sorted(keys) == sorted((p, o) for p, o, _, _ in records)  # every record once: bronze or quarantine
    assert a["rows"] + b["rows"] == len(bronze) and a["quarantined"] + b["quarantined"] == len(refused) > 0

    not_due = cli("lag", *kafka, *lake, "--min-lag", "1", "--max-age-s", "1")
    assert not_due.returncode == 4 and "no drain due" in not_due.stdout

    db = str(tmp_path / "spotify.duckdb")
    staged = cli("stage", *lake, "--duckdb", db, "--json")
    assert staged.returncode == 0, staged.stderr
    again = cli("stage", *lake, "--duckdb", db, "--json")
    assert json.loads(again.stdout)["rows"] == 0 and json.loads(staged.stdout)["rows"] == len(bronze)
    with duckdb.connect(db, read_only=True) as con:
        rows = con.execute("select count(*), count(distinct (kafka_partition, kafka_offset)) from bronze.spotify_events").fetchone()
        assert rows == (len(bronze), len(bronze))
        assert con.execute("select count(*) from bronze.spotify_events_quarantine").fetchone()[0] == len(refused)
        reasons = dict(con.execute("select reason, count(*) from bronze.spotify_events_quarantine group by all").fetchall())
    assert Counter(reasons) == Counter(a["quarantined_by_reason"]) + Counter(b["quarantined_by_reason"]) \
        == Counter(q["reason"] for q in refused)

    compacted = cli("maintain", "compact", *lake, "--closed-after-s", "0", "--json")
    assert compacted.returncode == 0, compacted.stderr
    assert len(committed_bronze(stack, lake_prefix, topic, exclude=("raw",))) == len(bronze)  # same rows after OPTIMIZE
    vacuum = cli("maintain", "vacuum", *lake, "--retention-hours", "1", "--dry-run", "--json")
    assert vacuum.returncode == 0 and json.loads(vacuum.stdout)["files_deleted"] == 0  # nothing is an hour old


def test_exit_codes_tell_bad_input_from_an_unreachable_service(stack, topic, lake_prefix, cli, tmp_path):
    lake = ["--lake-url", stack.lake(lake_prefix)["url"]]
    assert cli("produce", "--bootstrap", stack.bootstrap, "--topic", topic, "--events", "10").returncode == 0
    assert cli("drain", "--bootstrap", stack.bootstrap, "--topic", topic, *lake).returncode == 0
    down = cli("drain", "--bootstrap", "127.0.0.1:1", "--timeout-s", "3", "--topic", topic, *lake)
    assert down.returncode == 3 and "Kafka is unreachable" in down.stderr
    store_down = cli("lag", "--bootstrap", stack.bootstrap, "--topic", topic, *lake, AWS_ENDPOINT_URL="http://127.0.0.1:1")
    assert store_down.returncode == 3 and "cannot reach the lake" in store_down.stderr
    assert cli("drain", "--lake-url", "http://not-a-lake").returncode == 2
    assert cli("drain", "--partition-share", "2/2", "--bootstrap", stack.bootstrap, "--topic", topic, *lake).returncode == 2
    bad = tmp_path / "bad.properties"
    bad.write_text("security.protocol\n")
    refused = cli("lag", "--kafka-config", str(bad), "--topic", topic, *lake)
    assert refused.returncode == 2 and "line 1: not key=value" in refused.stderr
    assert cli("stage", *lake).returncode == 2  # no warehouse named

    # The installed entry point, as a cron job calls it.
    r = subprocess.run([sys.executable, "-m", "spotify_pipeline.cli", "lag", "--bootstrap", stack.bootstrap, "--topic", topic,
                        *lake, "--min-lag", "1"], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "AWS_ACCESS_KEY_ID": stack.access_key, "AWS_SECRET_ACCESS_KEY": stack.secret_key,
                            "AWS_ENDPOINT_URL": stack.s3_endpoint})
    assert r.returncode == 4 and "0 records behind" in r.stdout, r.stderr
