"""DbtBuildOperator: run ``dbt build`` in-process (dbtRunner) against the warehouse."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator, Context

from spotify_pipeline.hooks.duckdb import DuckDBWarehouseHook


class DbtBuildFailed(RuntimeError):
    """dbt build finished with failing models or tests; the message names them."""


class DbtBuildOperator(BaseOperator):
    """Runs ``dbt build`` on ``project_dir`` and returns per-node results as XCom.

    For the DuckDB target the database path comes from the DuckDB connection and reaches the
    profile as the ``SPOTIFY_DUCKDB_PATH`` environment variable.
    """

    template_fields: Sequence[str] = ("project_dir", "select", "exclude", "target", "vars")
    ui_color = "#FF694B"

    def __init__(
        self,
        *,
        project_dir: str,
        profiles_dir: str | None = None,
        target: str = "duckdb",
        select: str | None = None,
        exclude: str | None = None,
        vars: dict[str, Any] | None = None,
        duckdb_conn_id: str = DuckDBWarehouseHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.project_dir = project_dir
        self.profiles_dir = profiles_dir
        self.target = target
        self.select = select
        self.exclude = exclude
        self.vars = vars
        self.duckdb_conn_id = duckdb_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        import json

        from dbt.cli.main import dbtRunner

        os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "False")
        os.environ.setdefault("DO_NOT_TRACK", "1")
        if self.target == "duckdb":
            os.environ["SPOTIFY_DUCKDB_PATH"] = DuckDBWarehouseHook(self.duckdb_conn_id).path
        with tempfile.TemporaryDirectory(prefix="spotify-dbt-") as work:
            args = [
                "build",
                "--project-dir", self.project_dir,
                "--profiles-dir", self.profiles_dir or self.project_dir,
                "--target", self.target,
                "--target-path", os.path.join(work, "target"),
                "--log-path", os.path.join(work, "logs"),
            ]
            if self.select:
                args += ["--select", self.select]
            if self.exclude:
                args += ["--exclude", self.exclude]
            if self.vars:
                args += ["--vars", json.dumps(self.vars)]
            self.log.info("dbt %s", " ".join(args))
            res = dbtRunner().invoke(args)
        if res.exception is not None:
            raise DbtBuildFailed(f"dbt could not run: {res.exception}") from res.exception
        nodes = []
        for r in getattr(res.result, "results", None) or []:
            node = {
                "unique_id": r.node.unique_id,
                "status": str(r.status),
                "execution_time_s": round(r.execution_time or 0.0, 3),
                "message": r.message,
                "failures": r.failures,
            }
            nodes.append(node)
            self.log.info("%-8s %s (%.2fs) %s", node["status"], node["unique_id"], node["execution_time_s"], node["message"] or "")
        failed = [n["unique_id"] for n in nodes if n["status"] in ("error", "fail", "runtime error")]
        if not res.success:
            raise DbtBuildFailed(f"dbt build failed: {', '.join(failed) or 'see the log'}")
        counts: dict[str, int] = {}
        for n in nodes:
            counts[n["status"]] = counts.get(n["status"], 0) + 1
        return {"success": True, "counts": counts, "nodes": nodes}
