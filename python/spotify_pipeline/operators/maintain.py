"""Lake maintenance: OPTIMIZE (LakeCompactOperator) and VACUUM (LakeVacuumOperator), in Rust.

The drain commits one small file per batch and partition, so an hour of bronze is hundreds of
files of a few hundred KB: slow to list and to scan, and a per-file cost in every COPY. OPTIMIZE
rewrites the small files of each closed hour into files of about ``target_file_bytes``; VACUUM
then deletes the files OPTIMIZE removed once no reader can need them any more.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator, Context

from spotify_pipeline import _core
from spotify_pipeline.hooks.lake import LakeHook
from spotify_pipeline.progress import log_progress

MIB = 1 << 20
# Files of about this size after OPTIMIZE (a closed hour of 10 M events packs into 3 of them).
DEFAULT_TARGET_FILE_BYTES = 128 * MIB
# An hour is compacted once it ended this long ago: a drain lagging by less still adds to it.
DEFAULT_CLOSED_AFTER_S = 600
# VACUUM keeps removed files a week, Delta's default (deltaTable.deletedFileRetentionDuration).
DEFAULT_RETENTION_HOURS = 168


def _int(value: Any, name: str) -> int:
    """A templated field rendered as text (without ``render_template_as_native_obj``) or a number."""
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an integer, got {value!r}") from None


def _bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if str(value).strip().lower() in ("true", "1", "yes"):
        return True
    if str(value).strip().lower() in ("false", "0", "no", ""):
        return False
    raise ValueError(f"{name} must be true or false, got {value!r}")


class LakeCompactOperator(BaseOperator):
    """OPTIMIZE: bin-packs the small files of each closed ``date``/``hour`` partition of the
    bronze table ``bronze/<dataset>`` and its quarantine table into files of about
    ``target_file_bytes`` (a partition ends with one file, or with files of at least half the
    target).

    Why only closed hours: a record lands in the hour of its Kafka timestamp, so once an hour has
    ended (plus ``closed_after_s`` of grace for a lagging drain) nothing more is added to it, and
    compacting it once is enough. An open hour would be rewritten again and again.

    Why it is safe next to a running drain and stage: each commit removes and adds files with
    ``dataChange = false``. Readers see the same rows at every version; the stager, which loads
    the table's versions with ``dataChange = true`` adds, skips the compaction commits, so no
    row is ever loaded twice; a drain only appends, so it never conflicts with a compaction.

    :param lake_url: ``s3://bucket[/prefix]`` or ``file:///abs/dir`` (templated)
    :param lake_conn_id: the ``aws`` connection for ``s3://`` lakes
    :param dataset: the tables ``bronze/<dataset>`` and ``bronze/<dataset>_quarantine`` (templated)
    :param target_file_bytes: size of the files written, compressed (templated; at least 1 MiB)
    :param closed_after_s: an hour is compacted once it ended this long ago (templated)

    XCom: ``tables`` (the core's summary per table: partitions_compacted, files and bytes removed
    and added, rows, version, elapsed_s, warnings) and their totals ``files_removed``,
    ``files_added``, ``bytes_removed``, ``bytes_added``, ``elapsed_s``.
    """

    template_fields: Sequence[str] = ("lake_url", "dataset", "target_file_bytes", "closed_after_s")
    ui_color = "#FFF3E0"

    def __init__(
        self,
        *,
        lake_url: str,
        lake_conn_id: str | None = LakeHook.default_conn_name,
        dataset: str = "spotify_events",
        target_file_bytes: int = DEFAULT_TARGET_FILE_BYTES,
        closed_after_s: int = DEFAULT_CLOSED_AFTER_S,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.lake_url = lake_url
        self.lake_conn_id = lake_conn_id
        self.dataset = dataset
        self.target_file_bytes = target_file_bytes
        self.closed_after_s = closed_after_s

    def execute(self, context: Context) -> dict[str, Any]:
        lake = LakeHook(self.lake_url, self.lake_conn_id).lake_config()
        options: _core.CompactOptions = {
            "dataset": self.dataset,
            "target_file_bytes": _int(self.target_file_bytes, "target_file_bytes"),
            "closed_after_s": _int(self.closed_after_s, "closed_after_s"),
        }
        return compact_lake(lake, options, self.log, log_progress(self.log))


class LakeVacuumOperator(BaseOperator):
    """VACUUM: deletes, from the bronze table ``bronze/<dataset>`` and its quarantine table, the
    files that no version within ``retention_hours`` needs: files OPTIMIZE removed longer ago than
    that, and files no commit ever added (a killed drain's uploads) once that old.

    Why a retention: a reader (a stage loading an older version, a time-travel query) may still
    read a removed file for a while, and a drain's uploaded but not yet committed files are in no
    version at all. The core refuses a retention under 1 hour; turning that guard off is only for
    tests and maintenance windows with no drain running, so this operator does not offer it.

    :param lake_url: ``s3://bucket[/prefix]`` or ``file:///abs/dir`` (templated)
    :param lake_conn_id: the ``aws`` connection for ``s3://`` lakes
    :param dataset: the tables ``bronze/<dataset>`` and ``bronze/<dataset>_quarantine`` (templated)
    :param retention_hours: keep removed and unreferenced files this long (templated; at least 1)
    :param dry_run: list what would be deleted, delete nothing (templated)

    XCom: ``tables`` (the core's summary per table: files_deleted, the first 50 deleted, dry_run,
    elapsed_s) and the total ``files_deleted``.
    """

    template_fields: Sequence[str] = ("lake_url", "dataset", "retention_hours", "dry_run")
    ui_color = "#FBE9E7"

    def __init__(
        self,
        *,
        lake_url: str,
        lake_conn_id: str | None = LakeHook.default_conn_name,
        dataset: str = "spotify_events",
        retention_hours: int = DEFAULT_RETENTION_HOURS,
        dry_run: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.lake_url = lake_url
        self.lake_conn_id = lake_conn_id
        self.dataset = dataset
        self.retention_hours = retention_hours
        # A templated field named as the core's option; it shadows BaseOperator.dry_run(), which Airflow never calls.
        self.dry_run = dry_run  # type: ignore[method-assign,assignment]

    def execute(self, context: Context) -> dict[str, Any]:
        lake = LakeHook(self.lake_url, self.lake_conn_id).lake_config()
        options: _core.VacuumOptions = {
            "dataset": self.dataset,
            "retention_hours": _int(self.retention_hours, "retention_hours"),
            "dry_run": _bool(self.dry_run, "dry_run"),
        }
        return vacuum_lake(lake, options, self.log)


def compact_lake(
    lake: _core.LakeConfig, options: _core.CompactOptions, log: Any, progress: _core.ProgressCallback | None
) -> dict[str, Any]:
    """OPTIMIZE (``_core.compact``) with its log lines and totals: what the operator and
    ``spotify-pipeline maintain compact`` share."""
    log.info(
        "Compacting the closed hours of %s/bronze/%s into files of %.0f MB",
        lake["url"], options["dataset"], options["target_file_bytes"] / 1e6,
    )
    tables = _core.compact(lake, options, progress)
    for t in tables:
        for w in t["warnings"]:
            log.warning("%s", w)
        log.info(
            "%s: %d hour partitions compacted, %d files -> %d (%.1f MB -> %.1f MB, %s rows) in %.1fs",
            t["table"], t["partitions_compacted"], t["files_removed"], t["files_added"],
            t["bytes_removed"] / 1e6, t["bytes_added"] / 1e6, f"{t['rows']:,}", t["elapsed_s"],
        )
    return {
        "tables": tables,
        "files_removed": sum(t["files_removed"] for t in tables),
        "files_added": sum(t["files_added"] for t in tables),
        "bytes_removed": sum(t["bytes_removed"] for t in tables),
        "bytes_added": sum(t["bytes_added"] for t in tables),
        "elapsed_s": sum(t["elapsed_s"] for t in tables),
    }


def vacuum_lake(lake: _core.LakeConfig, options: _core.VacuumOptions, log: Any) -> dict[str, Any]:
    """VACUUM (``_core.vacuum``) with its log lines and total: what the operator and
    ``spotify-pipeline maintain vacuum`` share."""
    log.info(
        "Vacuuming %s/bronze/%s: files removed or unreferenced for over %d h%s",
        lake["url"], options["dataset"], options["retention_hours"], " (dry run)" if options["dry_run"] else "",
    )
    tables = _core.vacuum(lake, options)
    for t in tables:
        log.info(
            "%s: %s %d files in %.1fs%s", t["table"], "would delete" if t["dry_run"] else "deleted",
            t["files_deleted"], t["elapsed_s"], f", e.g. {t['deleted'][:3]}" if t["deleted"] else "",
        )
    return {"tables": tables, "files_deleted": sum(t["files_deleted"] for t in tables)}
