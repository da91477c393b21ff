"""Type stubs of the Rust core (rust/python/src/lib.rs)."""

from collections.abc import Callable
from typing import Any

__version__: str

class SpotifyPipelineError(Exception): ...
class ConfigError(SpotifyPipelineError): ...
class BrokerUnavailableError(SpotifyPipelineError): ...
class KafkaError(SpotifyPipelineError): ...
class LakeError(SpotifyPipelineError): ...
class DataError(SpotifyPipelineError): ...

Progress = dict[str, Any]
ProgressCallback = Callable[[Progress], None]

def simulate(sim: dict[str, Any], count: int) -> list[tuple[str, bytes]]: ...
def default_sim_config() -> dict[str, Any]:
    """The simulator's defaults (seed, catalog, world, faults), as the core writes them."""
def estimated_span_ms(sim: dict[str, Any], count: int) -> int: ...
def start_ending_at(sim: dict[str, Any], count: int, end_ms: int) -> int:
    """A simulated start such that ``count`` events end at or just before ``end_ms``."""

def publish_reference(sim: dict[str, Any], lake: dict[str, Any]) -> dict[str, Any]: ...
def simulate_throughput(sim: dict[str, Any], count: int) -> dict[str, Any]: ...
def simulate_to_file(sim: dict[str, Any], count: int, path: str) -> dict[str, Any]: ...
def produce(
    kafka: dict[str, Any],
    sim: dict[str, Any],
    options: dict[str, Any],
    progress: ProgressCallback | None = None,
) -> dict[str, Any]: ...
def drain(
    kafka: dict[str, Any],
    lake: dict[str, Any],
    options: dict[str, Any],
    progress: ProgressCallback | None = None,
) -> dict[str, Any]: ...
def topic_partitions(kafka: dict[str, Any]) -> list[int]: ...
def lag(kafka: dict[str, Any], lake: dict[str, Any], dataset: str = "spotify_events") -> dict[str, Any]:
    """Per partition: the events table's txn version, the high watermark, the lag."""
def pending_versions(lake: dict[str, Any], dataset: str, after_events: int, after_quarantine: int) -> dict[str, Any]:
    """``events_version``, ``quarantine_version`` (now), and ``events``/``quarantine``: per version
    after the given ones, the data files it added (key, rows, bytes, partition values, Kafka
    partition and offsets) and ``lost``: the ranges of records it records as lost to Kafka's
    retention (kafka_partition, from_offset, to_offset, records)."""
def prepare_files(
    lake: dict[str, Any],
    table: str,
    files: list[dict[str, Any]],
    out_dir: str,
    progress: ProgressCallback | None = None,
    source_file_column: bool = False,
) -> list[dict[str, Any]]:
    """Fetches ``files`` of ``table`` (``events`` or ``quarantine``) into ``out_dir`` (at
    ``<out_dir>/<key>``), checked against their commits; all or nothing. With
    ``source_file_column`` they are rewritten with a ``source_file`` column."""
def fetch_reference(lake: dict[str, Any], name: str, out_dir: str) -> list[tuple[str, str]]: ...
def compact(lake: dict[str, Any], options: dict[str, Any], progress: ProgressCallback | None = None) -> list[dict[str, Any]]:
    """OPTIMIZE the dataset's closed hours; one summary per table."""
def vacuum(lake: dict[str, Any], options: dict[str, Any]) -> list[dict[str, Any]]:
    """VACUUM the dataset's tables; one summary per table."""
def put_object(lake: dict[str, Any], key: str, data: bytes) -> None:
    """Writes ``data`` to ``key`` in the lake, replacing any object there."""
def load_columns(table: str = "events") -> list[tuple[str, str, bool]]:
    """Columns of a warehouse load table, ``events`` or ``quarantine``: (name, type, nullable)."""
def reject_reasons() -> list[str]:
    """Every reason a record can be refused for: the quarantine's ``reason`` values."""
