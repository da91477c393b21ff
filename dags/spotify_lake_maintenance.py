"""Lake maintenance, every hour: OPTIMIZE the bronze Delta tables, then VACUUM them.

The drain commits one small Parquet file per batch and Kafka partition, so each ``date``/``hour``
partition of ``bronze/spotify_events`` (and of ``bronze/spotify_events_quarantine``) collects
hundreds of files of a few hundred KB. Small files make every listing, scan and COPY slower.

**compact** (OPTIMIZE) bin-packs the small files of each *closed* hour (one that ended at least
10 minutes ago: records land in the hour of their Kafka arrival, so a closed hour no longer
grows) into files of about ``target_file_bytes``. Each hour is one Delta commit that removes the
small files and adds the big ones with ``dataChange = false``: every version reads the same
rows, and the stager, which loads only ``dataChange = true`` adds, skips these commits, so it
never loads a compacted file's rows a second time. A running drain only appends and never
conflicts with it.

**vacuum** (VACUUM) then deletes the files OPTIMIZE removed more than ``retention_hours`` ago,
and files no commit ever referenced (uploads of a killed drain) once that old. The retention
keeps removed files for readers still on an older version (a lagging stage, time travel). A
retention guard in the core refuses anything under 1 hour: a drain's uploaded but not yet
committed files belong to no version, and a shorter retention would delete them under it. The
guard cannot be turned off from here.

Connection: ``aws_default`` (aws), MinIO/S3 credentials, extra ``{"endpoint_url": ...}``.
Variable (optional): ``spotify_lake_url`` (default ``s3://spotify-lake``).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param

from spotify_pipeline.hooks.lake import LAKE_URL_TEMPLATE
from spotify_pipeline.operators import LakeCompactOperator, LakeVacuumOperator

with DAG(
    dag_id="spotify_lake_maintenance",
    description="Hourly OPTIMIZE (bin-pack closed hours) then VACUUM of the bronze Delta tables",
    schedule="@hourly",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["spotify", "lake", "maintenance"],
    params={
        "target_file_bytes": Param(128 << 20, type="integer", minimum=1 << 20, maximum=1 << 30, title="Target file size (bytes)",
                                   description="Size OPTIMIZE packs each closed hour's small files into, compressed "
                                               "(1 MiB to 1 GiB; default 128 MiB, the size Delta and Snowflake recommend)."),
        "retention_hours": Param(168, type="integer", minimum=1, maximum=24 * 365, title="Retention (hours)",
                                 description="VACUUM deletes files removed (or never committed) longer ago than this "
                                             "(1 h to a year; default a week). Under 1 h is refused: a drain's uncommitted uploads would go."),
    },
    render_template_as_native_obj=True,
    doc_md=__doc__,
) as dag:
    compact = LakeCompactOperator(
        task_id="compact",
        lake_url=LAKE_URL_TEMPLATE,
        target_file_bytes="{{ params.target_file_bytes }}",
    )
    vacuum = LakeVacuumOperator(
        task_id="vacuum",
        lake_url=LAKE_URL_TEMPLATE,
        retention_hours="{{ params.retention_hours }}",
    )

    compact >> vacuum
