"""Real ``airflow standalone`` for tests: a session fixture and a REST API v2 client.

    from standalone import airflow_standalone  # noqa: F401  (makes the fixture available)

    def test_something(airflow_standalone):
        api = airflow_standalone.api()
        run_id = api.trigger("spotify_pipeline", {"events": 1000})
        api.wait_for_run("spotify_pipeline", run_id)

What it starts: ``airflow standalone`` (scheduler, DAG processor, triggerer, API server with the
UI) on 127.0.0.1 and a free port, with its own AIRFLOW_HOME (SQLite) in a temporary directory;
SimpleAuthManager with one ``admin`` user whose password is known (written to the generated
passwords file before start, which Airflow keeps); ``AIRFLOW__CORE__PARALLELISM=4``; the
project's connections and variables from ``scripts/airflow-env.sh``, pointed at the test's stack
(a fresh lake prefix, a warehouse file in the temporary directory); the repo's ``dags/``; the
``spotify_duckdb`` pool with one slot. It waits until ``/api/v2/monitor/health`` reports every
component healthy, and on teardown stops the whole process group (SIGINT, then SIGTERM, then
SIGKILL). If a test of the session failed, the standalone log and task logs are copied to the
artifacts directory (env ``SPOTIFY_TEST_ARTIFACTS``, default ``<repo>/artifacts``).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
USERNAME = "admin"
POOL = ("spotify_duckdb", 1, "DuckDB allows one writing process")


def artifacts_dir() -> Path:
    d = Path(os.environ.get("SPOTIFY_TEST_ARTIFACTS") or ROOT / "artifacts")
    d.mkdir(parents=True, exist_ok=True)
    return d


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def project_env(overrides: dict[str, str]) -> dict[str, str]:
    """The environment scripts/airflow-env.sh makes from ``overrides`` (SPOTIFY_* settings)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "SPOTIFY_", "_AIRFLOW"))}
    out = subprocess.run(
        ["bash", "-c", "source scripts/airflow-env.sh && env -0"],
        cwd=ROOT, env={**base, **overrides}, capture_output=True, check=True,
    ).stdout
    return dict(item.split("=", 1) for item in out.decode().split("\0") if "=" in item)


class RunFailed(AssertionError):
    pass


class Api:
    """The Airflow REST API v2 with a JWT from ``POST /auth/token``."""

    def __init__(self, base_url: str, username: str, password: str) -> None:
        self.base_url = base_url
        self.http = requests.Session()
        r = self.http.post(f"{base_url}/auth/token", json={"username": username, "password": password}, timeout=30)
        assert r.status_code == 201, f"POST /auth/token: {r.status_code} {r.text}"
        self.token = r.json()["access_token"]
        self.http.headers["Authorization"] = f"Bearer {self.token}"

    def request(self, method: str, path: str, expect: tuple[int, ...] = (200,), **kw: Any) -> Any:
        r = self.http.request(method, f"{self.base_url}/api/v2{path}", timeout=60, **kw)
        assert r.status_code in expect, f"{method} {path}: {r.status_code} {r.text[:2000]}"
        return r.json() if r.content else None

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw)

    def dag(self, dag_id: str) -> dict[str, Any]:
        return self.get(f"/dags/{dag_id}")

    def has_dag(self, dag_id: str) -> bool:
        return self.http.get(f"{self.base_url}/api/v2/dags/{dag_id}", timeout=30).status_code == 200

    def wait_for_dag(self, dag_id: str, timeout_s: float = 180) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.has_dag(dag_id):
                return self.dag(dag_id)
            time.sleep(2)
        errors = self.get("/importErrors")
        raise AssertionError(f"DAG {dag_id} was not parsed in {timeout_s} s; import errors: {json.dumps(errors)[:3000]}")

    def unpause(self, dag_id: str) -> None:
        self.request("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        body = {"logical_date": None, "conf": conf or {}}
        return self.request("POST", f"/dags/{dag_id}/dagRuns", expect=(200,), json=body)["dag_run_id"]

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        return self.get(f"/dags/{dag_id}/dagRuns", params={"order_by": "run_after", "limit": 100})["dag_runs"]

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self.get(f"/dags/{dag_id}/dagRuns/{requests.utils.quote(run_id, safe='')}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return self.get(f"/dags/{dag_id}/dagRuns/{requests.utils.quote(run_id, safe='')}/taskInstances")["task_instances"]

    def xcom(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> Any:
        path = f"/dags/{dag_id}/dagRuns/{requests.utils.quote(run_id, safe='')}/taskInstances/{task_id}/xcomEntries/return_value"
        return self.get(path, params={"map_index": map_index, "deserialize": True})["value"]

    def wait_for_run(self, dag_id: str, run_id: str, timeout_s: float = 900) -> dict[str, Any]:
        """Waits until the run succeeds; fails with each task's state if it fails or times out."""
        deadline = time.monotonic() + timeout_s
        state = None
        while time.monotonic() < deadline:
            run = self.run(dag_id, run_id)
            state = run["state"]
            if state == "success":
                return run
            if state == "failed":
                break
            time.sleep(3)
        tis = {f"{t['task_id']}[{t['map_index']}]": t["state"] for t in self.task_instances(dag_id, run_id)}
        raise RunFailed(f"{dag_id} run {run_id} ended {state!r} (waited up to {timeout_s} s); tasks: {tis}")

    def wait_for_new_run(self, dag_id: str, known: set[str], timeout_s: float = 300) -> str:
        """Waits until ``dag_id`` has a run not in ``known`` (e.g. one an asset event created)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            new = [r["dag_run_id"] for r in self.runs(dag_id) if r["dag_run_id"] not in known]
            if new:
                return new[-1]
            time.sleep(3)
        raise AssertionError(f"no new run of {dag_id} in {timeout_s} s (known: {sorted(known)})")


@dataclass
class Standalone:
    base_url: str
    home: Path
    env: dict[str, str]
    username: str
    password: str
    duckdb_path: Path
    lake_url: str
    lake_prefix: str
    log_path: Path
    process: subprocess.Popen | None = None
    _api: Api | None = field(default=None, repr=False)

    def api(self) -> Api:
        if self._api is None:
            self._api = Api(self.base_url, self.username, self.password)
        return self._api

    def cli(self, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
        return subprocess.run(["airflow", *args], env=self.env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)

    def health(self) -> dict[str, Any] | None:
        try:
            r = requests.get(f"{self.base_url}/api/v2/monitor/health", timeout=5)
        except requests.RequestException:
            return None
        return r.json() if r.status_code == 200 else None

    def healthy(self) -> bool:
        h = self.health()
        if not h:
            return False
        parts = [h.get(k) for k in ("metadatabase", "scheduler", "triggerer", "dag_processor")]
        return all(p and p.get("status") == "healthy" for p in parts)

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def prepare(stack, home: Path, extra_env: dict[str, str] | None = None) -> Standalone:
    """An Airflow home for the test's stack in ``home``: environment, migrated database, pool."""
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    password = secrets.token_urlsafe(12)
    lake_prefix = f"tests/{uuid.uuid4().hex[:12]}"
    data_dir = home / "data"
    env = project_env({
        "SPOTIFY_DATA_DIR": str(data_dir),
        "SPOTIFY_LAKE_URL": f"s3://{stack.bucket}/{lake_prefix}",
        # spotify_ingest watches its own topic: the shared spotify_events holds other runs' records.
        "SPOTIFY_INGEST_TOPIC": f"ingest_{lake_prefix.rsplit('/', 1)[-1]}",
        "SPOTIFY_KAFKA_BOOTSTRAP": stack.bootstrap,
        "SPOTIFY_S3_ENDPOINT": stack.s3_endpoint,
        "SPOTIFY_S3_ACCESS_KEY": stack.access_key,
        "SPOTIFY_S3_SECRET_KEY": stack.secret_key,
        "AIRFLOW_HOME": str(home),
    })
    base_url = f"http://127.0.0.1:{port}"
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USERNAME}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url}/execution/",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": base_url,
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "True",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        **(extra_env or {}),
    })
    # SimpleAuthManager keeps passwords it finds in this file and generates only missing ones.
    (home / "simple_auth_manager_passwords.json.generated").write_text(json.dumps({USERNAME: password}) + "\n")
    sa = Standalone(
        base_url=base_url, home=home, env=env, username=USERNAME, password=password,
        duckdb_path=Path(env["SPOTIFY_DUCKDB_PATH"]), lake_url=env["SPOTIFY_LAKE_URL"], lake_prefix=lake_prefix,
        log_path=home / "standalone.log",
    )
    r = sa.cli("db", "migrate", timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    r = sa.cli("pools", "set", *map(str, POOL))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return sa


def wait_healthy(sa: Standalone, alive: Any, timeout_s: float) -> None:
    """Until every component reports healthy; ``alive()`` names a process that exited, or None."""
    deadline = time.monotonic() + timeout_s
    while not sa.healthy():
        if dead := alive():
            raise AssertionError(f"{dead} exited:\n{sa.log_tail()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"airflow not healthy after {timeout_s} s: {sa.health()}\n{sa.log_tail()}")
        time.sleep(2)


def start(stack, home: Path, extra_env: dict[str, str] | None = None, timeout_s: float = 300) -> Standalone:
    """Starts ``airflow standalone`` in ``home``; returns once every component is healthy."""
    sa = prepare(stack, home, extra_env)
    with open(sa.log_path, "wb") as log:
        sa.process = subprocess.Popen(
            ["airflow", "standalone"], env=sa.env, cwd=home, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        wait_healthy(sa, lambda: sa.process.poll() is not None and f"airflow standalone ({sa.process.returncode})", timeout_s)
    except AssertionError:
        stop(sa)
        raise
    return sa


def stop(sa: Standalone, grace_s: float = 15) -> None:
    """Stops the standalone's whole process group: SIGINT (its own shutdown), SIGTERM, SIGKILL."""
    p = sa.process
    if p is None:
        return
    try:
        pgid = os.getpgid(p.pid)
    except ProcessLookupError:
        return
    for sig, wait in ((signal.SIGINT, grace_s), (signal.SIGTERM, 5), (signal.SIGKILL, 10)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        end = time.monotonic() + wait
        while time.monotonic() < end:
            try:
                os.killpg(pgid, 0)  # anyone left in the group?
            except ProcessLookupError:
                p.poll()
                return
            p.poll()
            time.sleep(0.5)
    p.poll()


def keep_logs(sa: Standalone, name: str = "airflow-standalone") -> Path:
    dest = artifacts_dir() / name
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    for src in [sa.log_path, sa.home / "logs"]:
        if src.is_file():
            shutil.copy2(src, dest / src.name)
        elif src.is_dir():
            shutil.copytree(src, dest / src.name, dirs_exist_ok=True)
    return dest


@pytest.fixture(scope="session")
def airflow_standalone(stack, tmp_path_factory, request) -> Iterator[Standalone]:
    failed_before = request.session.testsfailed
    sa = start(stack, tmp_path_factory.mktemp("airflow-standalone"))
    try:
        yield sa
    finally:
        stop(sa)
        if request.session.testsfailed > failed_before:
            print(f"\n[standalone] a test failed: logs kept in {keep_logs(sa)}")


COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")


class Components:
    """Airflow's components as separate processes, as a real deployment runs them (LocalExecutor,
    inside the scheduler), each in its own process group so that one can be killed with all its
    children, as when its machine or container dies, and started again."""

    def __init__(self, sa: Standalone) -> None:
        self.sa = sa
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str) -> None:
        with open(self.sa.home / f"{name}.log", "ab") as log:
            self.procs[name] = subprocess.Popen(
                ["airflow", name], env=self.sa.env, cwd=self.sa.home, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def dead(self) -> str | None:
        for name, p in self.procs.items():
            if p.poll() is not None:
                return f"airflow {name} ({p.returncode})"
        return None

    def start_all(self, timeout_s: float = 300) -> None:
        for name in COMPONENTS:
            self.start(name)
        wait_healthy(self.sa, self.dead, timeout_s)

    def pid(self, name: str) -> int:
        return self.procs[name].pid

    def kill(self, name: str) -> None:
        """kill -9 of the component and every process of its group."""
        p = self.procs[name]
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()

    def stop_all(self, grace_s: float = 20) -> None:
        for p in self.procs.values():
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace_s
        for name in list(self.procs):
            try:
                self.procs[name].wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.kill(name)


def pipeline_settled(api: Api, lag: Any, timeout_s: float = 600, dags: tuple[str, ...] = ("spotify_ingest", "spotify_transform")) -> dict[str, list[dict[str, Any]]]:
    """Waits until ``lag()`` (records waiting in Kafka) is 0 and every run of ``dags`` has
    ended, twice in a row 10 s apart (a watcher may fire once more for the last records, and
    a stage's asset event queues one more transform); returns the runs by DAG."""
    deadline, quiet = time.monotonic() + timeout_s, 0
    while time.monotonic() < deadline:
        runs = {d: api.runs(d) for d in dags}
        ended = all(r["state"] in ("success", "failed") for rs in runs.values() for r in rs)
        quiet = quiet + 1 if ended and lag() == 0 else 0
        if quiet == 2:
            return runs
        time.sleep(10)
    raise AssertionError(f"the pipeline did not settle in {timeout_s} s: { {d: [(r['dag_run_id'], r['state']) for r in api.runs(d)] for d in dags} }")
