"""DbtBuildOperator: run ``dbt build`` in-process (dbtRunner) against the warehouse.

- In-process: ``dbt.cli.main.dbtRunner``, no subprocess; select/exclude/vars/target/full_refresh
  are templated.
- One log line per node as it finishes (status, time, rows), per-node results as XCom.
- Fails with the failing models and tests named in the exception message.
- Emits an Airflow Asset per gold model: :func:`spotify_pipeline.assets.dbt_gold_assets` lists
  them from the project's ``models/marts`` folder (the ``gold`` schema) at DAG parse time, so they are declared outlets
  and the scheduler can trigger downstream DAGs on them; after a successful build each asset event
  carries the node's status and row count as its ``extra``.
- For the DuckDB target it runs in the one-slot pool ``spotify_duckdb`` by default (DuckDB
  allows one writing process per file) and hands the Airflow DuckDB connection's path to the
  profile as ``SPOTIFY_DUCKDB_PATH``.

Asset naming: ``spotify://warehouse/gold/<model>``, name ``spotify_gold_<model>`` (as
``spotify_pipeline.assets.GOLD_ASSETS``): the same assets whichever warehouse the target is;
``asset_uri_prefix``/``asset_name_prefix`` change it.

Snowflake target: the profile reads ``SNOWFLAKE_*`` environment variables; the operator sets them
from the Airflow ``snowflake`` connection ``snowflake_conn_id`` when it exists
(:func:`spotify_pipeline.hooks.snowflake.dbt_profile_env`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, ClassVar

from airflow.sdk import Asset, BaseOperator, Context

from spotify_pipeline.assets import DEFAULT_ASSET_NAME_PREFIX, DEFAULT_ASSET_URI_PREFIX, dbt_gold_assets
from spotify_pipeline.hooks.duckdb import DUCKDB_POOL, DuckDBWarehouseHook
from spotify_pipeline.hooks.snowflake import dbt_profile_env

FAILED_STATUSES = ("error", "fail", "runtime error")
# dbt's parse of this project takes ~2.5 s of a build; its partial-parse file, kept here between
# runs (per project and target), lets the next run re-parse only what changed. dbt itself throws
# the file away when the project, vars, profile or dbt version differ.
PARTIAL_PARSE_CACHE = os.path.join(tempfile.gettempdir(), "spotify-dbt-partial-parse")
# "source freshness" checks the sources' freshness blocks (a warn passes, an error fails).
COMMANDS = ("build", "run", "test", "seed", "snapshot", "source freshness")


class DbtBuildFailed(RuntimeError):
    """dbt finished with failing models or tests (or could not run); the message names them."""

    def __init__(self, message: str, failed: Sequence[str] = (), result: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.failed = list(failed)
        self.result = result


def _is_template(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _as_list(value: str | Iterable[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return value.split()
    return [str(v) for v in value]


@contextmanager
def _environ(**values: str | None) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    try:
        for k, v in values.items():
            if v is not None:
                os.environ[k] = v
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def target_of_asset_events(triggering_asset_events: Any, default: str = "duckdb") -> str:
    """The warehouse of the latest triggering asset event that names one (``extra["warehouse"]``,
    set by the stage), else ``default``. Resolved inside the dbt task rather than by a task of its
    own before it: a task start is seconds of every record's way to gold."""
    latest = None
    for events in (triggering_asset_events or {}).values():
        for event in events:
            if (event.extra or {}).get("warehouse") and (latest is None or event.timestamp > latest.timestamp):
                latest = event
    return str(latest.extra["warehouse"]) if latest else default


def _release_duckdb() -> None:
    """dbt-duckdb keeps its database open in the process after dbtRunner returns; close it, so the
    file's lock goes with the build (another process, or this one with other settings, can open it)."""
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:
        return
    env = getattr(DuckDBConnectionManager, "_ENV", None)
    DuckDBConnectionManager.close_all_connections()  # type: ignore[no-untyped-call]  # unannotated in dbt-duckdb
    if env is not None and hasattr(env, "close"):
        env.close()


class DbtBuildOperator(BaseOperator):
    """Runs ``dbt build`` (or ``command``) on ``project_dir`` in-process and returns per-node results.

    :param project_dir: the dbt project folder (templated).
    :param profiles_dir: folder of profiles.yml (templated); default ``project_dir``.
    :param target: profile target (templated): ``duckdb`` (default) or ``snowflake``. Empty: the
        warehouse named by the latest triggering asset event's ``extra["warehouse"]`` (what
        ``StageToWarehouseOperator`` loaded), else ``duckdb``; see :func:`target_of_asset_events`.
    :param select: ``--select`` (templated; a string of space-separated selectors or a list).
    :param exclude: ``--exclude`` (templated).
    :param vars: ``--vars`` (templated; a dict or a YAML/JSON string).
    :param full_refresh: ``--full-refresh`` (templated; bool or "true"/"false").
    :param command: ``build`` (default), ``run``, ``test``, ``seed``, ``snapshot`` or ``source
        freshness`` (the sources' ``freshness`` blocks: a warning passes, an error fails).
    :param duckdb_conn_id: for the DuckDB target, the connection whose path reaches the profile as
        ``SPOTIFY_DUCKDB_PATH``.
    :param emit_gold_assets: declare one outlet Asset per gold model (unless ``outlets`` is given).
        Needs a literal ``project_dir`` (a templated one is only known at run time): otherwise pass
        ``outlets=dbt_gold_assets(path)`` yourself.
    :param snowflake_conn_id: for the Snowflake target, the connection whose settings reach the
        profile as ``SNOWFLAKE_*`` variables (skipped when it does not exist: the environment's
        variables are used as they are).
    :param asset_uri_prefix: prefix of the gold assets' URIs; ``asset_name_prefix`` of their names.
    :param quiet: pass ``--quiet`` to dbt (its own per-node lines; ours are logged either way).
    :param target_path: where dbt writes ``target/`` (manifest, run_results); default a temporary
        folder per run, whose partial-parse file is kept in ``PARTIAL_PARSE_CACHE`` for the next.

    Pool: ``spotify_duckdb`` by default when the target is DuckDB (or templated), since DuckDB
    allows one writing process per file; pass ``pool=`` to override.
    """

    template_fields: Sequence[str] = (
        "project_dir", "profiles_dir", "select", "exclude", "target", "vars", "full_refresh",
    )
    template_fields_renderers: ClassVar[dict[str, str]] = {"vars": "json"}
    ui_color = "#FF694B"
    # Set by execute, for the dbtRunner callback (_log_node).
    _duckdb_path: str | None
    _rows: dict[str, int]

    def __init__(
        self,
        *,
        project_dir: str,
        profiles_dir: str | None = None,
        target: str = "duckdb",
        select: str | list[str] | None = None,
        exclude: str | list[str] | None = None,
        vars: dict[str, Any] | str | None = None,
        full_refresh: bool | str = False,
        command: str = "build",
        duckdb_conn_id: str = DuckDBWarehouseHook.default_conn_name,
        snowflake_conn_id: str = "snowflake_default",
        emit_gold_assets: bool = True,
        asset_uri_prefix: str = DEFAULT_ASSET_URI_PREFIX,
        asset_name_prefix: str = DEFAULT_ASSET_NAME_PREFIX,
        quiet: bool = True,
        target_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        if command not in COMMANDS:
            raise ValueError(f"command must be one of {', '.join(COMMANDS)}, not {command!r}")
        # A target known only at run time (template, XComArg) may be DuckDB: serialize it too.
        if "pool" not in kwargs and (not isinstance(target, str) or target in ("duckdb", "") or _is_template(target)):
            kwargs["pool"] = DUCKDB_POOL
        if emit_gold_assets and "outlets" not in kwargs and isinstance(project_dir, str) and not _is_template(project_dir):
            kwargs["outlets"] = dbt_gold_assets(project_dir, uri_prefix=asset_uri_prefix, name_prefix=asset_name_prefix)
        super().__init__(**kwargs)
        self.project_dir = project_dir
        self.profiles_dir = profiles_dir
        self.target = target
        self.select = select
        self.exclude = exclude
        self.vars = vars
        self.full_refresh = full_refresh
        self.command = command
        self.duckdb_conn_id = duckdb_conn_id
        self.snowflake_conn_id = snowflake_conn_id
        self.asset_uri_prefix = asset_uri_prefix
        self.quiet = quiet
        self.target_path = target_path

    # ------------------------------------------------------------------------------------------

    def dbt_args(self, target_path: str, log_path: str) -> list[str]:
        args = [
            *self.command.split(),
            "--project-dir", str(self.project_dir),
            "--profiles-dir", str(self.profiles_dir or self.project_dir),
            "--target", str(self.target),
            "--target-path", target_path,
            "--log-path", log_path,
        ]
        if self.quiet:
            args.append("--quiet")
        if sel := _as_list(self.select):
            args += ["--select", *sel]
        if exc := _as_list(self.exclude):
            args += ["--exclude", *exc]
        if self.vars:
            args += ["--vars", self.vars if isinstance(self.vars, str) else json.dumps(self.vars)]
        if _as_bool(self.full_refresh) and self.command in ("build", "run", "seed"):
            args.append("--full-refresh")
        return args

    def _log_node(self, event: Any) -> None:
        """dbtRunner callback: one line per node as it finishes (status, time, rows)."""
        if event.info.name != "NodeFinished":
            return
        try:
            info, rr = event.data.node_info, event.data.run_result
            rows = dict(rr.adapter_response).get("rows_affected")
            # Views are left out: counting one runs its query again (the staging and intermediate
            # views over 1.2 M events took 8 s of a 30 s build).
            if rows in (None, "", -1) and self._duckdb_path and rr.status == "success" and info.resource_type in (
                "model", "seed", "snapshot"
            ) and info.materialized not in ("view", "ephemeral"):
                rows = self._count_rows(self._duckdb_path, info.node_relation.relation_name)
                if rows is not None:
                    self._rows[info.unique_id] = rows
            self.log.info(
                "dbt %-7s %-40s %6.2fs%s%s",
                rr.status, info.unique_id, rr.execution_time,
                f" rows={rows}" if rows not in (None, "", -1) else "",
                f"  {rr.message}" if rr.message and rr.status not in ("success", "pass") else "",
            )
        except Exception:  # logging must never break the build
            self.log.debug("could not log a dbt event", exc_info=True)

    def _count_rows(self, path: str, relation: str | None) -> int | None:
        """DuckDB reports no rows_affected: count the rows of the relation just built. (In the same
        process DuckDB shares dbt's open database, so this is a plain read.)"""
        if not relation:
            return None
        try:
            import duckdb

            with duckdb.connect(path) as con:
                count: int = con.execute(f"select count(*) from {relation}").fetchone()[0]  # type: ignore[index]  # count(*) returns one row
                return count
        except Exception:
            self.log.debug("could not count the rows of %s", relation, exc_info=True)
            return None

    def execute(self, context: Context) -> dict[str, Any]:
        from dbt.cli.main import dbtRunner

        if not str(self.target or "").strip():
            self.target = target_of_asset_events(context.get("triggering_asset_events"))
            self.log.info("dbt target %s (from the triggering asset events)", self.target)
        duckdb_path = None
        held: AbstractContextManager[Any] = nullcontext()
        env: dict[str, str | None] = {}
        if str(self.target) == "duckdb":
            warehouse = DuckDBWarehouseHook(self.duckdb_conn_id)
            duckdb_path = warehouse.path
            env["SPOTIFY_DUCKDB_PATH"] = duckdb_path
            # Open the file first, waiting out readers (a dashboard, a BI tool, the duckdb CLI) for
            # the connection's lock_timeout_s. dbt-duckdb's own duckdb.connect(path) then gets the
            # instance this process already holds, so no reader slips in between.
            held = warehouse.connect()
        elif str(self.target) == "snowflake":
            env.update(self._snowflake_env())
        self._duckdb_path, self._rows = duckdb_path, {}
        started = time.monotonic()
        with held, tempfile.TemporaryDirectory(prefix="spotify-dbt-") as work, _environ(
            **env,
            DBT_SEND_ANONYMOUS_USAGE_STATS=os.environ.get("DBT_SEND_ANONYMOUS_USAGE_STATS", "False"),
            DO_NOT_TRACK=os.environ.get("DO_NOT_TRACK", "1"),
        ):
            target_path = self.target_path or os.path.join(work, "target")
            cached = None if self.target_path else self._partial_parse_cache()
            if cached and os.path.exists(cached):
                os.makedirs(target_path, exist_ok=True)
                shutil.copyfile(cached, os.path.join(target_path, "partial_parse.msgpack"))
            args = self.dbt_args(target_path, os.path.join(work, "logs"))
            self.log.info("dbt %s", " ".join(args))
            try:
                res = dbtRunner(callbacks=[self._log_node]).invoke(args)
            finally:
                _release_duckdb()
            if cached:
                self._keep_partial_parse(os.path.join(target_path, "partial_parse.msgpack"), cached)
        elapsed = round(time.monotonic() - started, 3)
        if res.exception is not None:
            raise DbtBuildFailed(f"dbt could not run: {res.exception}") from res.exception

        nodes = []
        for r in getattr(res.result, "results", None) or []:
            node = r.node
            response = dict(r.adapter_response or {})
            nodes.append({
                "unique_id": node.unique_id,
                "name": node.name,
                "resource_type": str(node.resource_type),
                "status": str(r.status),
                "execution_time_s": round(r.execution_time or 0.0, 3),
                "rows_affected": response.get("rows_affected"),
                "rows": self._rows.get(node.unique_id),
                "failures": r.failures,
                "message": (r.message or "")[:300] or None,
                "relation": getattr(node, "relation_name", None),
            })
        counts: dict[str, int] = {}
        for n in nodes:
            counts[n["status"]] = counts.get(n["status"], 0) + 1
        failed = [n for n in nodes if n["status"] in FAILED_STATUSES]
        summary = {
            "success": bool(res.success), "command": self.command, "target": str(self.target),
            "counts": counts, "elapsed_s": elapsed, "nodes": nodes,
        }
        self.log.info("dbt %s: %s in %.1fs", self.command, counts, elapsed)
        if not res.success:
            named = "; ".join(
                f"{n['unique_id']} ({n['status']}"
                + (f", {n['failures']} failing rows" if n["failures"] else "")
                + (f": {n['message']}" if n["message"] else "") + ")"
                for n in failed
            )
            raise DbtBuildFailed(
                f"dbt {self.command} failed: {len(failed)} node(s) failed: {named or 'see the log'}",
                failed=[n["unique_id"] for n in failed],
                result=summary,
            )
        self._annotate_assets(context, nodes)
        return summary

    def _partial_parse_cache(self) -> str:
        key = hashlib.sha256(f"{os.path.abspath(str(self.project_dir))}\0{self.target}".encode()).hexdigest()[:16]
        return os.path.join(PARTIAL_PARSE_CACHE, f"{key}.msgpack")

    def _keep_partial_parse(self, produced: str, cached: str) -> None:
        """Copies dbt's partial-parse file to the cache, atomically (runs on other targets or
        projects, or this one on another worker slot, may write theirs at the same time)."""
        if not os.path.exists(produced):
            return
        try:
            os.makedirs(os.path.dirname(cached), exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=os.path.dirname(cached), suffix=".tmp")
            os.close(fd)
            shutil.copyfile(produced, tmp)
            os.replace(tmp, cached)
        except OSError:  # a cache: the next run parses in full
            self.log.debug("could not keep dbt's partial-parse file", exc_info=True)

    def _snowflake_env(self) -> dict[str, str]:
        """SNOWFLAKE_* for the profile, from the Airflow snowflake connection if there is one."""
        return dbt_profile_env(self.snowflake_conn_id)

    def _annotate_assets(self, context: Context, nodes: list[dict[str, Any]]) -> None:
        """Puts each gold model's status and row count on its asset event (Airflow records an event
        for every declared outlet when the task succeeds)."""
        outlet_events = context.get("outlet_events") if hasattr(context, "get") else None
        if outlet_events is None:
            return
        by_name = {n["name"]: n for n in nodes if n["resource_type"] in ("model", "snapshot", "seed")}
        for asset in self.outlets or []:
            if not isinstance(asset, Asset):
                continue
            model = asset.uri.rstrip("/").rsplit("/", 1)[-1]
            node = by_name.get(model)
            extra: dict[str, Any] = {"dbt_model": model, "built": node is not None}
            if node is not None:
                extra.update(
                    status=node["status"], rows=node["rows"] if node["rows"] is not None else node["rows_affected"],
                    execution_time_s=node["execution_time_s"],
                )
            outlet_events[asset].extra = extra
