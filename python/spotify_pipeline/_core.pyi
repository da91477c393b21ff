"""Type stubs of the Rust core (rust/python/src/lib.rs).

Configs, options and summaries cross the boundary as plain dicts (serde on the Rust side); the
TypedDicts below name their keys, as the core's structs define them. Option sets are
``total=False``: every key has a default in the core.

The TypedDicts exist for type checkers only: import them under ``TYPE_CHECKING``, or name them in
annotations (``_core.LakeConfig``), never at run time.
"""

from collections.abc import Callable
from typing import Any, Literal, NotRequired, TypeAlias, TypedDict

__version__: str

class SpotifyPipelineError(Exception): ...
class ConfigError(SpotifyPipelineError): ...
class BrokerUnavailableError(SpotifyPipelineError): ...
class KafkaError(SpotifyPipelineError): ...
class LakeError(SpotifyPipelineError): ...
class DataError(SpotifyPipelineError): ...

# ---- configs ---------------------------------------------------------------------------------

class KafkaConfig(TypedDict):
    client: dict[str, str]  # librdkafka properties; bootstrap.servers at least
    topic: str
    timeout_s: NotRequired[int]

class LakeConfig(TypedDict):
    url: str  # s3://bucket/prefix, file:///dir, or a local path
    options: NotRequired[dict[str, str]]  # object_store options (aws_endpoint, aws_access_key_id, ...)

class Faults(TypedDict, total=False):
    late_rate: float
    max_late_ms: int
    duplicate_rate: float
    malformed_rate: float

class SimConfig(TypedDict, total=False):
    seed: int
    catalog_seed: int
    start_ms: int
    users: int
    songs: int
    zipf_s: float
    sessions_per_user_per_day: float
    new_release_share: float
    faults: Faults

# ---- progress --------------------------------------------------------------------------------

class Progress(TypedDict):
    stage: str
    done: int
    total: int | None
    bytes: int
    elapsed_s: float
    rate_per_s: float
    eta_s: float | None

ProgressCallback: TypeAlias = Callable[[Progress], None]

# ---- simulate and produce --------------------------------------------------------------------

class SimStats(TypedDict):
    records: int
    valid: int
    duplicates: int
    late: int
    malformed: int
    malformed_by_class: dict[str, int]
    first_event_ms: int | None
    last_event_ms: int | None

# What the core's check_compression accepts, for produce and stream alike.
Compression: TypeAlias = Literal["none", "gzip", "snappy", "lz4", "zstd"]

class ProduceOptions(TypedDict, total=False):
    count: int | None
    duration_s: float | None
    rate_per_s: float | None
    speedup: float | None
    create_topic: bool
    partitions: int
    replication: int
    compression: Compression

class PartitionRange(TypedDict):
    partition: int
    first_offset: int  # this run's own deliveries
    last_offset: int
    count: int

class ProduceSummary(TypedDict):
    topic: str
    events: int
    sim: SimStats
    bytes: int
    partitions: list[PartitionRange]
    elapsed_s: float
    events_per_s: float

class PublishedTable(TypedDict):
    table: str
    catalog: str
    rows: int
    published: bool

class ReferenceSummary(TypedDict):
    tables: list[PublishedTable]

class Throughput(TypedDict):
    events: int
    bytes: int
    elapsed_s: float
    events_per_s: float
    mb_per_s: float

def simulate(sim: SimConfig, count: int) -> list[tuple[str, bytes]]:
    """``(kind, payload)`` per record: kind ``valid`` (late events included), ``duplicate`` or
    ``malformed:<reason>``."""
def default_sim_config() -> SimConfig:
    """The simulator's defaults (seed, catalog, world, faults), as the core writes them."""
def estimated_span_ms(sim: SimConfig, count: int) -> int: ...
def start_ending_at(sim: SimConfig, count: int, end_ms: int) -> int:
    """A simulated start such that ``count`` events end at or just before ``end_ms``."""
def publish_reference(sim: SimConfig, lake: LakeConfig) -> ReferenceSummary: ...
def simulate_throughput(sim: SimConfig, count: int) -> Throughput: ...
def simulate_to_file(sim: SimConfig, count: int, path: str) -> SimStats: ...
def produce(
    kafka: KafkaConfig,
    sim: SimConfig,
    options: ProduceOptions,
    progress: ProgressCallback | None = None,
) -> ProduceSummary: ...
def topic_partitions(kafka: KafkaConfig) -> list[int]: ...
def kafka_brokers(kafka: KafkaConfig) -> list[str]:
    """The brokers (``host:port``) of the cluster the config reaches; its topic is not used."""

class TruthSummary(TypedDict):
    records: int
    valid: int
    duplicates: int
    malformed: int

def write_truth(sim: SimConfig, first: int, end: int, not_sent: list[int], path: str) -> TruthSummary:
    """Records ``first..end`` of the simulation less ``not_sent``, as CSV lines
    ``index,kind,event_id,event_ts``."""

# ---- stream ----------------------------------------------------------------------------------

class StreamOptions(TypedDict, total=False):
    speedup: float
    anchor: list[int] | None
    resume_at: int
    send_from_ms: int | None
    checkpoint_s: float
    duration_s: float | None
    message_timeout_s: int
    create_topic: bool
    partitions: int
    replication: int
    compression: Compression

class PartitionOffset(TypedDict):
    partition: int
    offset: int

class Checkpoint(TypedDict):
    next: int
    first_sent: int
    sent: int
    bytes: int
    offsets: list[PartitionOffset]
    sim_now_ms: int
    last: bool

class Recovered(TypedDict):
    next: int
    found: int
    not_sent: list[int]
    sim_now_ms: int | None

def stream(
    kafka: KafkaConfig,
    sim: SimConfig,
    options: StreamOptions,
    checkpoint: Callable[[Checkpoint], None],
    progress: ProgressCallback | None = None,
) -> Checkpoint:
    """Streams the simulation until ``duration_s`` or a stop request (an exception from
    ``progress``), calling ``checkpoint`` whenever all sent so far is acknowledged."""
def recover_stream(kafka: KafkaConfig, sim: SimConfig, from_: int, offsets: list[PartitionOffset], /) -> Recovered:
    """What reached the topic past a checkpoint, matched to the simulation's records."""

# ---- drain and lag ---------------------------------------------------------------------------

class DrainOptions(TypedDict, total=False):
    group_id: str
    partitions: list[int]  # empty: all
    dataset: str
    raw: bool
    batch_max_records: int
    batch_max_bytes: int
    max_records: int | None
    max_seconds: float | None
    idle_timeout_s: int
    workers: int  # 0: one per core, at most 4
    buffer_max_bytes: int
    commit_interval_ms: int
    allow_data_loss: bool
    reset_offsets: bool

class PartitionDrain(TypedDict):
    partition: int
    from_offset: int
    next_offset: int
    high_watermark: int
    lag: int
    lost_to_retention: int
    left_to_other_drain: bool

class BatchCommitted(TypedDict):
    partition: int
    start_offset: int
    end_offset: int
    rows: int
    quarantined: int
    version: int

class DrainSummary(TypedDict):
    topic: str
    table: str
    quarantine_table: str
    rows: int
    quarantined: int
    quarantined_by_reason: dict[str, int]
    files: list[str]
    batches: list[BatchCommitted]
    partitions: list[PartitionDrain]
    commits: int
    commits_per_s: float
    bytes: int
    lost_to_retention: int
    elapsed_s: float
    records_per_s: float
    warnings: list[str]

class PartitionLag(TypedDict):
    partition: int
    next_offset: int
    high_watermark: int
    lag: int
    oldest_undrained_ms: int | None
    newest_ms: int | None
    newest_drained_ms: int | None

class LagReport(TypedDict):
    topic: str
    lag: int
    oldest_undrained_ms: int | None
    table_version: int
    partitions: list[PartitionLag]
    newest_ms: int | None
    newest_drained_ms: int | None

def drain(
    kafka: KafkaConfig,
    lake: LakeConfig,
    options: DrainOptions,
    progress: ProgressCallback | None = None,
) -> DrainSummary: ...
def lag(kafka: KafkaConfig, lake: LakeConfig, dataset: str = "spotify_events") -> LagReport:
    """Per partition: the events table's txn version, the high watermark, the lag."""
def freshness(kafka: KafkaConfig, lake: LakeConfig, dataset: str = "spotify_events") -> LagReport:
    """``lag``, with the Kafka timestamps of the newest record in the topic and in the lake."""

# ---- stage -----------------------------------------------------------------------------------

# A dataset's two bronze tables, by the core's names for them.
LakeTable: TypeAlias = Literal["events", "quarantine"]

class DataFile(TypedDict):
    key: str  # <table>/<path in the table>
    rows: int
    bytes: int
    partition_values: dict[str, str | None]
    kafka_partition: int | None
    first_offset: int | None
    last_offset: int | None

class LostRange(TypedDict):
    kafka_partition: int
    from_offset: int | None
    to_offset: int
    records: int

class VersionChange(TypedDict):
    version: int
    files: list[DataFile]  # the files it added with dataChange = true
    lost: list[LostRange]  # records it records as lost to Kafka's retention

class Pending(TypedDict):
    events_version: int
    quarantine_version: int
    events: list[VersionChange]
    quarantine: list[VersionChange]

class PreparedFile(TypedDict):
    key: str
    local_path: str
    rows: int

def pending_versions(lake: LakeConfig, dataset: str, after_events: int, after_quarantine: int) -> Pending:
    """The tables' versions now, and every version after the given ones."""
def prepare_files(
    lake: LakeConfig,
    table: LakeTable,
    files: list[DataFile] | list[dict[str, Any]],
    out_dir: str,
    progress: ProgressCallback | None = None,
    source_file_column: bool = False,
) -> list[PreparedFile]:
    """Fetches ``files`` of ``table`` into ``out_dir`` (at ``<out_dir>/<key>``), checked against
    their commits; all or nothing. With ``source_file_column`` they are rewritten with a
    ``source_file`` column."""
def fetch_reference(lake: LakeConfig, name: str, out_dir: str) -> list[tuple[str, str]]:
    """``(key, local path)`` of each file of reference table ``name``."""
def load_columns(table: LakeTable = "events") -> list[tuple[str, str, bool]]:
    """Columns of a warehouse load table: (name, type, nullable)."""
def reject_reasons() -> list[str]:
    """Every reason a record can be refused for: the quarantine's ``reason`` values."""

# ---- maintain --------------------------------------------------------------------------------

class CompactOptions(TypedDict, total=False):
    dataset: str
    target_file_bytes: int
    closed_after_s: int

class CompactSummary(TypedDict):
    table: str
    partitions_compacted: int
    files_removed: int
    files_added: int
    bytes_removed: int
    bytes_added: int
    rows: int
    version: int
    elapsed_s: float
    warnings: list[str]

class VacuumOptions(TypedDict, total=False):
    dataset: str
    retention_hours: int
    dry_run: bool
    enforce_retention_guard: bool

class VacuumSummary(TypedDict):
    table: str
    files_deleted: int
    deleted: list[str]
    dry_run: bool
    elapsed_s: float

def compact(lake: LakeConfig, options: CompactOptions, progress: ProgressCallback | None = None) -> list[CompactSummary]:
    """OPTIMIZE the dataset's closed hours; one summary per table."""
def vacuum(lake: LakeConfig, options: VacuumOptions) -> list[VacuumSummary]:
    """VACUUM the dataset's tables; one summary per table."""
def put_object(lake: LakeConfig, key: str, data: bytes) -> None:
    """Writes ``data`` to ``key`` in the lake, replacing any object there."""
