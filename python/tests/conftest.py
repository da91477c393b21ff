"""Shared fixtures. Integration and e2e tests run against the real local stack, started (if it
is not running yet) by scripts/stack.sh: real Kafka, real MinIO."""

from __future__ import annotations

import os
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from reconcile import Stack

ROOT = Path(__file__).resolve().parents[2]

# Airflow reads its home at import: give the test process its own, never the user's ~/airflow.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="spotify-tests-airflow-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "False")
os.environ.setdefault("DO_NOT_TRACK", "1")


@pytest.fixture(scope="session")
def stack() -> Stack:
    subprocess.run([str(ROOT / "scripts" / "stack.sh"), "up"], check=True, timeout=900)
    out = subprocess.run([str(ROOT / "scripts" / "stack.sh"), "env"], check=True, capture_output=True, text=True).stdout
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


@pytest.fixture
def topic() -> str:
    """A fresh topic per test, so tests never see each other's records."""
    return f"test_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def lake_prefix() -> str:
    """A fresh lake prefix per test inside the stack's bucket."""
    return f"tests/{uuid.uuid4().hex[:12]}"
