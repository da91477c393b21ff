"""The topic the continuous pipeline ingests (``spotify_ingest``, the stream, the dashboard's
freshness panel, the command line): the environment's ``SPOTIFY_INGEST_TOPIC``, else the
simulator's default topic. Free of Airflow, so the command line starts fast."""

from __future__ import annotations

import os

INGEST_TOPIC_ENV = "SPOTIFY_INGEST_TOPIC"
DEFAULT_TOPIC = "spotify_events"


def ingest_topic() -> str:
    return os.environ.get(INGEST_TOPIC_ENV, DEFAULT_TOPIC)
