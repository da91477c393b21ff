"""How the continuous DAGs (``spotify_ingest``, ``spotify_transform``) retry their tasks.

Every task is idempotent (a drain commits each Kafka range once, a stage loads each Delta
version once, dbt's incremental models delete before they insert), so a task that was killed,
or met a broker or an object store that was away, is simply run again. A broker restart takes
~10 s here and MinIO's ~3 s: three tries 10 s apart outlast both.
"""

from datetime import timedelta

RETRY_DEFAULT_ARGS = {"retries": 3, "retry_delay": timedelta(seconds=10)}
