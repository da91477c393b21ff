"""The chaos soak: `spotify-pipeline stream` into real Airflow (api-server, scheduler,
dag-processor and triggerer as separate processes, LocalExecutor) on the real stack, with faults
injected at random times, then every layer reconciled against the stream's ground truth.

    python python/tests/soak.py --minutes 60 --seed 7      (scripts/soak.sh wraps it)

Faults, one at a time, in a shuffled cycle so that a short soak meets every kind:
- ``kill_drain``, ``kill_stage``, ``kill_dbt``: kill -9 of a running task's process;
- ``restart_broker``, ``restart_minio``: ``scripts/stack.sh restart-kafka`` / ``restart-minio``;
- ``kill_scheduler``, ``kill_triggerer``: kill -9 of the component and its whole process group
  (the scheduler's takes its LocalExecutor workers and their tasks along), started again 2-10 s
  later.

At the end the stream stops (SIGTERM), the pipeline catches up, and the reconciliation checks:
every (partition, offset) of the topic exactly once in the lake (bronze or quarantine, read with
the independent Delta reader) and in warehouse bronze; silver's event_ids equal the distinct
valid events that the stream's segment log regenerates; every gold KPI equals an independent
recompute from bronze; Kafka lag 0; every failed task instance followed by a successful retry
or a later successful run. RSS of each long-lived process is sampled every 5 s, and in a soak of
20 minutes or more it must stay flat (``_judge_rss``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE / "e2e")]

import duckdb  # noqa: E402
import numpy as np  # noqa: E402

from gold_kpis import check_gold_kpis  # noqa: E402
from reconcile import Stack, committed_bronze, local_stack, quarantined  # noqa: E402
from spotify_pipeline import _core  # noqa: E402
from spotify_pipeline.stream import truth  # noqa: E402
from standalone import ROOT, Components, pipeline_settled, prepare  # noqa: E402

FAULT_KINDS = ("kill_drain", "kill_stage", "kill_dbt", "restart_broker", "restart_minio", "kill_scheduler", "kill_triggerer")
# Which task each task-killing fault looks for: (dag_id, task_id).
TASK_FAULTS = {"kill_drain": ("spotify_ingest", "drain"), "kill_stage": ("spotify_ingest", "stage"),
               "kill_dbt": ("spotify_transform", "dbt_build")}
# Shorter than Airflow's defaults (300 s, 600 s, 300 s), so that the tasks of a scheduler killed
# with its workers are found dead and run again within a short soak. A deployment that expects
# machines to die would lower them too.
AIRFLOW_ENV = {
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "60",
    "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "90",
    "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "30",
}
CONTINUOUS_DAGS = ("spotify_ingest", "spotify_transform", "spotify_dashboard_export", "spotify_gold_audit")
RSS_JUDGED_FROM_MIN = 20
# The gold recompute holds bronze and gold in pandas, ~2 kB an event: at 11.3 M events (a freshness
# run's 10 M backlog) its process was OOM-killed at 21.8 GB of 23. Above this it is not run, and
# the report says so (the soaks and CI run it; every other layer is reconciled at any size).
GOLD_RECOMPUTE_MAX_EVENTS = 4_000_000
STREAM_FAULTS = {"late_rate": 0.02, "max_late_ms": 600_000, "duplicate_rate": 0.01, "malformed_rate": 0.005}


@dataclass
class Fault:
    at_s: float
    kind: str
    done: bool
    detail: str


@dataclass
class Report:
    minutes: float
    seed: int
    events: int = 0
    faults: list[Fault] = field(default_factory=list)
    runs: dict[str, Counter] = field(default_factory=dict)
    run_types: dict[str, Counter] = field(default_factory=dict)
    # Pairs of spotify_ingest runs that ran at the same time.
    overlapping_ingest_runs: int = 0
    retries: int = 0
    failed_tis: int = 0
    verdicts: dict[str, tuple[bool, str]] = field(default_factory=dict)
    not_run: dict[str, str] = field(default_factory=dict)
    rss_mb: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    catch_up_s: float = 0.0

    @property
    def ok(self) -> bool:
        return all(ok for ok, _ in self.verdicts.values())

    def table(self) -> str:
        lines = [f"soak: {self.minutes:g} min, seed {self.seed}", "", "| what | value |", "|---|---|",
                 f"| events sent | {self.events:,} |"]
        done = Counter(f.kind for f in self.faults if f.done)
        for kind in FAULT_KINDS:
            lines.append(f"| fault {kind} | {done.get(kind, 0)} (tried {sum(1 for f in self.faults if f.kind == kind)}) |")
        for dag, c in sorted(self.runs.items()):
            kinds = ", ".join(f"{k} {v}" for k, v in sorted((self.run_types.get(dag) or {}).items()))
            lines.append(f"| runs {dag} | {sum(c.values())} ({', '.join(f'{k} {v}' for k, v in sorted(c.items()))}; {kinds}) |")
        lines.append(f"| spotify_ingest runs that overlapped another | {self.overlapping_ingest_runs} pairs |")
        lines += [f"| task retries | {self.retries} |", f"| task instances failed for good | {self.failed_tis} |",
                  f"| catch-up after the stream stopped | {self.catch_up_s:.0f} s |"]
        for name, (ok, detail) in self.verdicts.items():
            lines.append(f"| {name} | {'PASS' if ok else 'FAIL'}: {detail} |")
        for name, why in self.not_run.items():
            lines.append(f"| {name} | NOT RUN: {why} |")
        lines += ["", "| process | RSS first 10 % (MB) | last 10 % (MB) | max (MB) |", "|---|---|---|---|"]
        for name, (first, last, peak) in sorted(self.rss_mb.items()):
            lines.append(f"| {name} | {first:.0f} | {last:.0f} | {peak:.0f} |")
        return "\n".join(lines)


def _keys(partitions: Any, offsets: Any) -> np.ndarray:
    return (np.asarray(partitions, np.int64) << 40) | np.asarray(offsets, np.int64)


def _exactly_once(sent: np.ndarray, got: np.ndarray, where: str) -> tuple[bool, str]:
    """`sent` sorted and distinct; `got` is every (partition, offset) key a layer holds."""
    distinct = np.unique(got)
    missing = len(np.setdiff1d(sent, distinct, assume_unique=True))
    ok = len(got) == len(distinct) == len(sent) and missing == 0
    return ok, f"{len(sent):,} sent, {len(got):,} {where}, {len(distinct):,} distinct, {missing:,} missing"


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _task_processes() -> dict[str, int]:
    """Task processes by TaskInstance id: Airflow titles each ``airflow worker -- <ti id>``."""
    out = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if cmd.startswith("airflow worker -- "):
            out[cmd.split()[3]] = int(d.name)
    return out


class Soak:
    def __init__(self, stack: Stack, home: Path, minutes: float, seed: int, rate: float, fault_every_s: float,
                 stream_faults: dict[str, float] | None = None) -> None:
        self.stack, self.home, self.minutes, self.seed = stack, home, minutes, seed
        self.rate, self.fault_every_s = rate, fault_every_s
        self.stream_faults = STREAM_FAULTS if stream_faults is None else stream_faults
        self.rng = random.Random(seed)
        self.report = Report(minutes, seed)
        self.rss: dict[str, list[float]] = defaultdict(list)
        self.sampling = threading.Event()
        self.started = time.monotonic()

    # ---- set-up ------------------------------------------------------------------------------

    def start(self) -> None:
        self.sa = prepare(self.stack, self.home / "airflow", AIRFLOW_ENV)
        self.topic = self.sa.env["SPOTIFY_INGEST_TOPIC"]
        self.kafka, self.lake = self.stack.kafka(self.topic), self.stack.lake(self.sa.lake_prefix)
        self.sim = {**_core.default_sim_config(), "seed": self.seed}
        # The catalog's reference tables, for the gold dimensions (an app's own source has them).
        _core.publish_reference(self.sim, self.lake)
        self.airflow = Components(self.sa)
        self.airflow.start_all()
        self.api = self.sa.api()
        # The export too, as a deployment runs it: it reads gold beside the writers.
        for dag in CONTINUOUS_DAGS:
            self.api.wait_for_dag(dag)
        self.stream_state = self.home / "stream"
        self._start_stream()
        for dag in CONTINUOUS_DAGS:
            self.api.unpause(dag)
        threading.Thread(target=self._sample_rss, daemon=True).start()
        self.started = time.monotonic()  # the soak's minutes are the stream's, set-up excluded

    def _start_stream(self) -> None:
        faults = [f"--{k.replace('_', '-')}={v}" for k, v in self.stream_faults.items()]
        self.stream_log = open(self.home / "stream.log", "ab")
        self.stream = subprocess.Popen(
            [sys.executable, "-m", "spotify_pipeline.cli", "stream", "--bootstrap", self.stack.bootstrap,
             "--topic", self.topic, "--state-dir", str(self.stream_state), "--rate", str(self.rate),
             "--seed", str(self.seed), *faults],
            stdout=self.stream_log, stderr=subprocess.STDOUT,
        )

    def restart_stream(self, rate: float) -> None:
        """Stops the stream cleanly and starts it at ``rate``: a new segment of the log (another
        rate is another simulation), which the truth regenerates like any other."""
        self.stream.send_signal(signal.SIGTERM)
        assert self.stream.wait(timeout=120) == 0, "the stream did not stop cleanly"
        self.stream_log.close()
        self.rate = rate
        self._start_stream()

    def _sample_rss(self) -> None:
        while not self.sampling.wait(5):
            pids = {"stream": self.stream.pid, **{f"airflow {n}": p.pid for n, p in self.airflow.procs.items()}}
            for name, pid in pids.items():
                if (mb := _rss_mb(pid)) is not None:
                    self.rss[name].append(mb)
            tasks = [mb for pid in _task_processes().values() if (mb := _rss_mb(pid)) is not None]
            if tasks:
                self.rss["task process (largest)"].append(max(tasks))

    # ---- faults ------------------------------------------------------------------------------

    def _running_ti(self, dag_id: str, task_id: str, wait_s: float = 90) -> dict | None:
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            tis = self.api.get(f"/dags/{dag_id}/dagRuns/~/taskInstances", params={"state": "running", "limit": 100})["task_instances"]
            procs = _task_processes()
            for ti in tis:
                if ti["task_id"] == task_id and ti["id"] in procs:
                    return {**ti, "os_pid": procs[ti["id"]]}
            time.sleep(0.3)
        return None

    def inject(self, kind: str) -> Fault:
        at = time.monotonic() - self.started
        if kind in TASK_FAULTS:
            ti = self._running_ti(*TASK_FAULTS[kind])
            if ti is None:
                return Fault(at, kind, False, "no such task ran within 90 s")
            time.sleep(self.rng.uniform(0, 1.0))
            try:
                os.kill(ti["os_pid"], signal.SIGKILL)
            except ProcessLookupError:
                return Fault(at, kind, False, f"{ti['dag_run_id']} {ti['task_id']}[{ti['map_index']}] ended first")
            return Fault(at, kind, True, f"{ti['dag_run_id']} {ti['task_id']}[{ti['map_index']}] try {ti['try_number']}")
        if kind in ("restart_broker", "restart_minio"):
            what = "kafka" if kind == "restart_broker" else "minio"
            r = subprocess.run([str(ROOT / "scripts" / "stack.sh"), f"restart-{what}"], capture_output=True, text=True, timeout=300)
            return Fault(at, kind, r.returncode == 0, r.stderr.strip().splitlines()[-1] if r.stderr.strip() else "")
        component = kind.removeprefix("kill_")
        self.airflow.kill(component)
        down = self.rng.uniform(2, 10)
        time.sleep(down)
        self.airflow.start(component)
        return Fault(at, kind, True, f"down {down:.0f} s")

    def run_faults(self, every_kind: bool = False) -> None:
        """Faults until the soak's minutes are up; with ``every_kind``, on until each kind was
        tried once (what a short soak must show), however long that takes."""
        end = self.started + self.minutes * 60
        cycle: list[str] = []
        while True:
            gap = self.fault_every_s * self.rng.uniform(0.5, 1.5)
            untried = every_kind and {f.kind for f in self.report.faults} != set(FAULT_KINDS)
            if time.monotonic() + gap >= end and not untried:
                break
            time.sleep(gap)
            if not cycle:
                cycle = list(FAULT_KINDS)
                self.rng.shuffle(cycle)
            fault = self.inject(cycle.pop())
            self.report.faults.append(fault)
            print(f"[soak] {fault.at_s:6.0f}s {fault.kind:15s} {'done' if fault.done else 'skipped'}: {fault.detail}", flush=True)
            if (dead := self.airflow.dead()) is not None:
                raise AssertionError(f"{dead} died outside a fault")
        time.sleep(max(0.0, end - time.monotonic()))

    # ---- the end -----------------------------------------------------------------------------

    def finish(self) -> Report:
        self.stream.send_signal(signal.SIGTERM)
        assert self.stream.wait(timeout=120) == 0, "the stream did not stop cleanly"
        stopped = time.monotonic()
        runs = pipeline_settled(self.api, lambda: _core.lag(self.kafka, self.lake)["lag"], timeout_s=900)
        self.report.catch_up_s = time.monotonic() - stopped
        self.sampling.set()
        for dag, rs in runs.items():
            self.report.runs[dag] = Counter(r["state"] for r in rs)
            self.report.run_types[dag] = Counter(r["run_type"] for r in rs)
        spans = sorted((r["start_date"], r["end_date"]) for r in runs["spotify_ingest"] if r["start_date"] and r["end_date"])
        self.report.overlapping_ingest_runs = sum(1 for i, a in enumerate(spans) for b in spans[i + 1:] if b[0] < a[1])
        self._check_task_instances(runs)
        self._reconcile()
        for name, xs in self.rss.items():
            k = max(1, len(xs) // 10)
            self.report.rss_mb[name] = (statistics.median(xs[:k]), statistics.median(xs[-k:]), max(xs))
        self._judge_rss()
        return self.report

    def _judge_rss(self) -> None:
        """Long-lived processes stay flat: the last tenth's median RSS within 25 % + 20 MB of the
        first tenth's. Judged from 20 minutes on: in a shorter soak the first tenth is start-up
        (a 4-minute soak's first 24 s), when the Airflow components are still importing."""
        if self.minutes < RSS_JUDGED_FROM_MIN:
            return
        grown = {name: (first, last) for name, (first, last, _) in self.report.rss_mb.items()
                 if not name.startswith("task process") and last > first * 1.25 + 20}
        self.report.verdicts["RSS of long-lived processes flat"] = (
            not grown, ", ".join(f"{n} {a:.0f} -> {b:.0f} MB" for n, (a, b) in grown.items()) or
            f"{len(self.report.rss_mb)} processes, last tenth within 25 % + 20 MB of the first")

    def _check_task_instances(self, runs: dict[str, list[dict]]) -> None:
        unanswered = []
        for dag, rs in runs.items():
            tis = self.api.get(f"/dags/{dag}/dagRuns/~/taskInstances", params={"limit": 1000})["task_instances"]
            self.report.retries += sum(max(0, t["try_number"] - 1) for t in tis)
            failed = [t for t in tis if t["state"] == "failed"]
            self.report.failed_tis += len(failed)
            succeeded_after = sorted(r["start_date"] for r in rs if r["state"] == "success" and r["start_date"])
            for t in failed:
                if not any(s > t["end_date"] for s in succeeded_after):
                    unanswered.append(f"{dag} {t['dag_run_id']} {t['task_id']}[{t['map_index']}]")
        self.report.verdicts["every failure followed by a successful retry or run"] = (
            not unanswered, f"{self.report.failed_tis} failed for good, {len(unanswered)} never answered {unanswered[:3]}")

    def _reconcile(self) -> None:
        v = self.report.verdicts
        lag = _core.lag(self.kafka, self.lake)
        v["Kafka lag back to 0"] = (lag["lag"] == 0, f"lag {lag['lag']}")
        # The topic's extent, from confluent-kafka (not our core).
        from confluent_kafka import Consumer, TopicPartition

        c = Consumer({"bootstrap.servers": self.stack.bootstrap, "group.id": "soak-watermarks"})
        parts = sorted(c.list_topics(self.topic, timeout=10).topics[self.topic].partitions)
        ends = {p: c.get_watermark_offsets(TopicPartition(self.topic, p), timeout=10)[1] for p in parts}
        c.close()
        # (partition, offset) as one int64, in numpy: 11 M Python tuples in sets took gigabytes.
        sent = np.sort(np.concatenate([_keys(np.full(end, p), np.arange(end)) for p, end in ends.items()] or [np.empty(0, np.int64)]))
        self.report.events = len(sent)

        bronze = committed_bronze(self.stack, self.sa.lake_prefix, self.topic, exclude=("raw",))
        refused = quarantined(self.stack, self.sa.lake_prefix, self.topic)
        lake = np.concatenate([
            _keys(bronze.column("kafka_partition").to_numpy(), bronze.column("kafka_offset").to_numpy()),
            _keys(np.array([r["kafka_partition"] for r in refused], np.int64), np.array([r["kafka_offset"] for r in refused], np.int64)),
        ])
        v["lake: every (partition, offset) exactly once"] = _exactly_once(sent, lake, "in the lake")

        db = str(self.sa.duckdb_path)
        with duckdb.connect(db, read_only=True) as con:
            wh = con.execute(
                "select kafka_partition, kafka_offset from bronze.spotify_events where kafka_topic = ? union all "
                "select kafka_partition, kafka_offset from bronze.spotify_events_quarantine where kafka_topic = ?",
                [self.topic, self.topic]).fetchnumpy()
        v["warehouse bronze: every (partition, offset) exactly once"] = _exactly_once(
            sent, _keys(wh["kafka_partition"], wh["kafka_offset"]), "in warehouse bronze")

        # Silver against the ground truth the stream's segment log regenerates.
        summaries = truth(self.stream_state, self.home / "truth")
        truth_csv = str(self.home / "truth" / "truth-*.csv")
        with duckdb.connect() as con:
            con.execute(f"attach '{db}' as wh (read_only)")
            expected, extra, missing = con.execute(f"""
                with t as (select distinct event_id from read_csv('{truth_csv}', all_varchar = true)
                           where kind in ('valid', 'duplicate')),
                     s as (select event_id from wh.silver.stg_spotify__events)
                select (select count(*) from t), (select count(*) from (select * from s except select * from t)),
                       (select count(*) from (select * from t except select * from s))""").fetchone()
            truth_records, truth_valid = con.execute(
                f"select count(*), count(*) filter (where kind in ('valid', 'duplicate')) from read_csv('{truth_csv}', all_varchar = true)").fetchone()
        v["topic = the segment log's regenerated records"] = (
            truth_records == len(sent), f"{truth_records:,} regenerated, {len(sent):,} in the topic ({len(summaries)} segment(s))")
        v["silver = distinct valid events of the ground truth"] = (
            extra == 0 and missing == 0, f"{expected:,} expected, {extra} extra, {missing} missing")

        by_reason = Counter(r["reason"] for r in refused)
        if len(sent) > GOLD_RECOMPUTE_MAX_EVENTS:
            self.report.not_run["gold KPIs = independent recompute from bronze"] = (
                f"{len(sent):,} events, above the in-memory recompute's {GOLD_RECOMPUTE_MAX_EVENTS:,} (~2 kB an event)")
            return
        try:
            checked = check_gold_kpis(db, bronze, len(refused), quarantined_by_reason=dict(by_reason),
                                      duplicates=truth_valid - expected)
            v["gold KPIs = independent recompute from bronze"] = (True, f"{checked.get('silver_events', '?'):,} silver events")
        except AssertionError as e:
            v["gold KPIs = independent recompute from bronze"] = (False, str(e)[:300])

    def stop(self) -> None:
        self.sampling.set()
        if getattr(self, "stream", None) and self.stream.poll() is None:
            self.stream.send_signal(signal.SIGTERM)
            self.stream.wait(timeout=60)
        if getattr(self, "airflow", None):
            self.airflow.stop_all()


def soak(stack: Stack, home: Path, minutes: float, seed: int = 7, rate: float = 300, fault_every_s: float = 45,
         stream_faults: dict[str, float] | None = None, every_kind: bool = False) -> Report:
    s = Soak(stack, home, minutes, seed, rate, fault_every_s, stream_faults)
    try:
        s.start()
        s.run_faults(every_kind)
        return s.finish()
    finally:
        s.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, required=True)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--rate", type=float, default=300, help="the stream's events/s (a day's mean)")
    ap.add_argument("--fault-every-s", type=float, default=45, help="mean time between faults")
    ap.add_argument("--home", default=None, help="where Airflow, the stream and the truth live (default: a temp dir)")
    ap.add_argument("--report", default=None, help="also write the table to this file")
    args = ap.parse_args()
    stack = local_stack()
    import tempfile

    home = Path(args.home or tempfile.mkdtemp(prefix="spotify-soak-"))
    report = soak(stack, home, args.minutes, args.seed, args.rate, args.fault_every_s)
    print(report.table())
    if args.report:
        Path(args.report).write_text(report.table() + "\n")
    json.dump({"ok": report.ok}, sys.stdout)
    print()
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
