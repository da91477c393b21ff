"""Shared fixtures. Integration and e2e tests run against the real local stack, started (if it
is not running yet) by scripts/stack.sh: real Kafka, real MinIO."""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

import pytest

from reconcile import Stack, local_stack


# Airflow reads its home at import: give the test process its own, never the user's ~/airflow.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="spotify-tests-airflow-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "False")
os.environ.setdefault("DO_NOT_TRACK", "1")


@pytest.fixture(scope="session")
def stack() -> Stack:
    return local_stack()


@pytest.fixture
def topic() -> str:
    """A fresh topic per test, so tests never see each other's records."""
    return f"test_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def lake_prefix() -> str:
    """A fresh lake prefix per test inside the stack's bucket."""
    return f"tests/{uuid.uuid4().hex[:12]}"
