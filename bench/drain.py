"""Draining benchmark: records/s and MB/s, side by side in one run, as ratios.

    .venv/bin/python bench/drain.py [--events 2000000] [--repeat 3] [--seed-style-events 50000]

On one topic of our simulated events (same broker, same data), interleaved `--repeat` times,
medians reported:
  1. Kafka's own org.apache.kafka.tools.ConsumerPerformance: read only, the ceiling (its fetch
     rate, which leaves out its consumer-group join: our drain assigns partitions and has none);
  2. our drain (Rust): read, validate, Arrow, Parquet (zstd), MinIO, Delta commits;
  3. our drain as two processes, each over half the partitions (1 -> 2 tasks), and both again
     with one writer thread per task (the scale-out where cores are left over);
  4. a Python peer: the best drain a Python data engineer would write with what Airflow users
     already have (confluent-kafka batch consume, json, pyarrow, Parquet zstd to MinIO per 100 k);
  5. a seed-style Python consumer (kafka-python, JSON files to MinIO with boto3).
Also the drain's peak RSS (VmHWM) and its RSS sampled over the run (flat = bounded memory,
whatever the backlog), measured in a child process, its Delta commits per second, and CPU
per record: the drain's threads by name, MinIO and the broker (from /proc, around each run). With the
drain's own defaults; `--batch-max-mb` and `--workers` change them.

Then the same drain and the Python peer on a second topic whose events span weeks (the main
job's world of 500 users) instead of hours: bronze is partitioned by arrival, so the drain's
speed must not depend on the events' own times. Last, the lake after a drain: files and median
file size per hour partition, before and after OPTIMIZE (`_core.compact`), and what it cost.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import delete_prefix, delete_topic, fresh_topic, kafka_tool, ratio_table, s3_client, stack_env  # noqa: E402

from spotify_pipeline import _core  # noqa: E402

SIM = {"seed": 1, "start_ms": 1_772_323_200_000, "users": 20_000, "songs": 20_000}
# The main job's world: 500 users, so a few million events span weeks of simulated time.
SIM_WEEKS = {"seed": 1, "start_ms": 1_772_323_200_000, "users": 500, "songs": 2_000}
DRAIN = {"group_id": "bench", "dataset": "spotify_events", "idle_timeout_s": 60}

PEER = "Python peer (confluent-kafka batch consume, json, pyarrow, Parquet zstd per 100 k)"
PEER_FILE_RECORDS = 100_000
# The peer's columns: the event contract's fields as they come in the JSON (strings and integers),
# one fixed schema so every file has the same columns and types; kafka_partition and kafka_offset follow.
PEER_INTS = {"duration_ms", "position_ms", "schema_version"}
PEER_FIELDS = ("event_id", "event_type", "event_ts", "user_id", "session_id", "song_id", "song_name", "artist_id",
               "artist_name", "album", "genre", "release_date", "duration_ms", "position_ms", "device_type", "country",
               "city", "timezone", "subscription", "playlist_id", "schema_version")

CHILD = """
import json, os, resource, sys, time
from spotify_pipeline import _core
import glob, threading
kafka, lake, opts = (json.loads(a) for a in sys.argv[1:4])
threads = {}  # each thread's last seen CPU seconds (threads that end leave /proc)
def sample_threads():
    while True:
        for d in glob.glob('/proc/self/task/*'):
            try:
                stat, name = open(d + '/stat').read().rsplit(')', 1)[1].split(), open(d + '/comm').read().strip()
            except OSError:
                continue
            threads[d] = (name, (int(stat[11]) + int(stat[12])) / os.sysconf('SC_CLK_TCK'))
        time.sleep(0.1)
threading.Thread(target=sample_threads, daemon=True).start()
t = time.perf_counter()
s = _core.drain(kafka, lake, opts)
wall = time.perf_counter() - t
hwm = next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM'))
cpu = {}
for name, seconds in list(threads.values()):
    cpu[name] = cpu.get(name, 0) + seconds
ru = resource.getrusage(resource.RUSAGE_SELF)
cpu["all"] = ru.ru_utime + ru.ru_stime
print(json.dumps({"rows": s["rows"], "bytes": s["bytes"], "wall_s": wall, "rss_kb": hwm, "commits": s["commits"], "cpu": cpu}))
"""


def rss_kb(pid: int) -> int | None:
    try:
        return next(int(line.split()[1]) for line in open(f"/proc/{pid}/status") if line.startswith("VmRSS"))
    except (OSError, StopIteration):
        return None


def server_cpu_s(pattern: str) -> float:
    """CPU seconds the stack's server processes matching ``pattern`` have used so far."""
    pids = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout.split()
    total = 0.0
    for pid in pids:
        try:
            stat = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
    return total


SERVERS = {"MinIO": "minio server", "broker": "kafka.Kafka"}


def cpu_per_record(outs: list[dict], servers: dict[str, float], n: int) -> str:
    """Microseconds of CPU per record: the drain (and its threads by name), then the servers."""
    us = lambda s: f"{s / n * 1e6:.2f}"  # noqa: E731
    threads: dict[str, float] = {}
    for o in outs:
        for name, seconds in o["cpu"].items():
            threads[name] = threads.get(name, 0) + seconds
    drain = threads.pop("all")
    named = ", ".join(f"{name} {us(s)}" for name, s in sorted(threads.items(), key=lambda kv: -kv[1]) if s / n * 1e6 >= 0.01)
    return f"drain {us(drain)} µs ({named}); " + ", ".join(f"{k} {us(v)} µs" for k, v in servers.items())


def drain_processes(env, topic, prefix, partition_sets, opts):
    kafka = {"client": {"bootstrap.servers": env["SPOTIFY_KAFKA_BOOTSTRAP"]}, "topic": topic, "timeout_s": 60}
    lake = lake_of(env, prefix)
    servers = {name: server_cpu_s(pattern) for name, pattern in SERVERS.items()}
    t = time.perf_counter()
    procs = [
        subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(kafka), json.dumps(lake), json.dumps({**opts, "partitions": ps})],
                         stdout=subprocess.PIPE, text=True)
        for ps in partition_sets
    ]
    samples = []  # RSS of the first process over the run
    while procs[0].poll() is None:
        if (kb := rss_kb(procs[0].pid)) is not None:
            samples.append(kb)
        time.sleep(0.25)
    outs = [json.loads(p.communicate()[0]) for p in procs]
    wall = time.perf_counter() - t
    drain_processes.commits_per_s = sum(o["commits"] for o in outs) / wall
    servers = {name: server_cpu_s(pattern) - servers[name] for name, pattern in SERVERS.items()}
    drain_processes.cpu = cpu_per_record(outs, servers, sum(o["rows"] for o in outs))
    return sum(o["rows"] for o in outs), wall, max(o["rss_kb"] for o in outs), samples


def over_time(samples: list[int]) -> str:
    """RSS at 25/50/75/100% of the run, in MB."""
    if not samples:
        return "-"
    return " / ".join(f"{samples[min(len(samples) - 1, int(len(samples) * q))] / 1024:.0f}" for q in (0.25, 0.5, 0.75, 0.999))


def consumer_performance(env, topic, n) -> tuple[float, float]:
    """(records/s, MB/s) of Kafka's own consumer reading the topic, group join left out."""
    out = kafka_tool(env, "org.apache.kafka.tools.ConsumerPerformance", "--bootstrap-server", env["SPOTIFY_KAFKA_BOOTSTRAP"],
                     "--topic", topic, "--num-records", str(n), "--group", f"cp-{uuid.uuid4().hex[:6]}", "--timeout", "60000")
    # start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec,
    # rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec
    row = [line for line in out.splitlines() if re.match(r"^\d{4}-", line)][-1].split(",")
    return float(row[9]), float(row[8])


def seed_style(env, topic, n):
    from kafka import KafkaConsumer

    s3 = s3_client(env)
    c = KafkaConsumer(topic, bootstrap_servers=env["SPOTIFY_KAFKA_BOOTSTRAP"], auto_offset_reset="earliest",
                      group_id=f"seed-{uuid.uuid4().hex[:6]}", enable_auto_commit=True, consumer_timeout_ms=10_000)
    batch, done, size, prefix = [], 0, 0, f"bench-seed/{uuid.uuid4().hex[:6]}"
    t = time.perf_counter()
    for msg in c:
        event = json.loads(msg.value)
        batch.append(event)
        size += len(msg.value)
        done += 1
        if len(batch) == 1_000 or done == n:
            now = time.gmtime()
            key = f"{prefix}/bronze/date={time.strftime('%Y-%m-%d', now)}/hour={now.tm_hour:02d}/events_batch_{done}.json"
            s3.put_object(Bucket=env["SPOTIFY_LAKE_BUCKET"], Key=key, Body=json.dumps(batch).encode())
            batch = []
        if done >= n:
            break
    wall = time.perf_counter() - t
    c.close()
    delete_prefix(env, prefix)
    return done / wall, size / 1e6 / wall


def python_peer_drain(env, topic, prefix, idle_timeout_s=60):
    """The best drain a Python data engineer would write with the libraries Airflow users already
    have: confluent-kafka (librdkafka) batch consume over partitions assigned from the beginning
    (no group join, no commits; the client only insists on a group.id), `json.loads` of each
    value in bulk, a pyarrow table per 100 k records (the fields as they come, plus
    kafka_partition and kafka_offset), Parquet zstd, put to MinIO with boto3. Stops at the high
    watermarks seen at start. Returns (rows, bytes, wall seconds)."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

    schema = pa.schema([(f, pa.int64() if f in PEER_INTS else pa.string()) for f in PEER_FIELDS])
    s3, bucket = s3_client(env), env["SPOTIFY_LAKE_BUCKET"]
    t = time.perf_counter()
    c = Consumer({
        "bootstrap.servers": env["SPOTIFY_KAFKA_BOOTSTRAP"], "group.id": f"peer-{uuid.uuid4().hex[:6]}",
        "enable.auto.commit": False, "enable.auto.offset.store": False,
        # Big fetches, a deep prefetch queue (librdkafka keeps fetching while Python encodes and uploads).
        "fetch.min.bytes": 1 << 20, "fetch.wait.max.ms": 100, "max.partition.fetch.bytes": 8 << 20,
        "fetch.max.bytes": 64 << 20, "queued.max.messages.kbytes": 256 << 10, "queued.min.messages": 200_000,
    })
    parts = sorted(c.list_topics(topic, timeout=30).topics[topic].partitions)
    marks = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=30, cached=False) for p in parts}
    end = {p: high for p, (_, high) in marks.items()}
    live = {p for p, (low, high) in marks.items() if high > low}
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in sorted(live)])

    values, partitions, offsets = [], [], []
    rows = size = files = 0

    def flush(k):
        nonlocal values, partitions, offsets, rows, files
        # from_pylist is pyarrow's fastest way from dicts (faster than a pa.array per column).
        table = pa.Table.from_pylist(list(map(json.loads, values[:k])), schema=schema)
        table = table.append_column("kafka_partition", pa.array(partitions[:k], type=pa.int32()))
        table = table.append_column("kafka_offset", pa.array(offsets[:k], type=pa.int64()))
        buf = io.BytesIO()
        pq.write_table(table, buf, compression="zstd")
        s3.put_object(Bucket=bucket, Key=f"{prefix}/peer/part-{files:05d}.parquet", Body=buf.getvalue())
        values, partitions, offsets = values[k:], partitions[k:], offsets[k:]
        rows, files = rows + k, files + 1

    idle_since = time.monotonic()
    while live:
        msgs = c.consume(num_messages=10_000, timeout=1.0)
        if not msgs:
            # Past the watermark without a record at end - 1 (a transaction marker, say): done too.
            for tp in c.position([TopicPartition(topic, p) for p in live]):
                if tp.offset >= end[tp.partition]:
                    live.discard(tp.partition)
            if live and time.monotonic() - idle_since > idle_timeout_s:
                raise TimeoutError(f"no record for {idle_timeout_s}s, partitions {sorted(live)} short of {end}")
            continue
        idle_since = time.monotonic()
        for m in msgs:
            if m.error():
                raise KafkaException(m.error())
            p, o = m.partition(), m.offset()
            if o >= end[p]:  # produced after the start: left for the next run
                continue
            v = m.value()
            values.append(v)
            partitions.append(p)
            offsets.append(o)
            size += len(v)
            if o == end[p] - 1:
                live.discard(p)
        while len(values) >= PEER_FILE_RECORDS:
            flush(PEER_FILE_RECORDS)
    if values:
        flush(len(values))
    wall = time.perf_counter() - t
    c.close()
    return rows, size, wall


def peer_rate(env, topic, n) -> float:
    """Records/s of the Python peer draining all of `topic` into a fresh prefix (then removed)."""
    prefix = f"bench/{uuid.uuid4().hex[:8]}"
    rows, _, wall = python_peer_drain(env, topic, prefix)
    assert rows == n, rows
    delete_prefix(env, prefix)
    return n / wall


def lake_of(env, prefix):
    return {"url": f"s3://{env['SPOTIFY_LAKE_BUCKET']}/{prefix}", "options": {
        "aws_endpoint": env["SPOTIFY_S3_ENDPOINT"], "aws_allow_http": "true", "aws_access_key_id": env["SPOTIFY_S3_ACCESS_KEY"],
        "aws_secret_access_key": env["SPOTIFY_S3_SECRET_KEY"], "aws_region": "us-east-1",
    }}


def files_per_hour(env, prefix) -> dict[tuple[str, str], list[int]]:
    """Sizes of the active files of each (date, hour) of the bronze table, read from its log with
    the tests' independent reader (not our core)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python" / "tests"))
    from delta_reader import S3Store, load_snapshot

    snap = load_snapshot(S3Store(s3_client(env), env["SPOTIFY_LAKE_BUCKET"], prefix), "bronze/spotify_events")
    out: dict[tuple[str, str], list[int]] = {}
    for add in snap.files.values():
        pv = add["partitionValues"]
        out.setdefault((pv["date"], pv["hour"]), []).append(add["size"])
    return out


def describe(hours: dict[tuple[str, str], list[int]]) -> str:
    files = [s for sizes in hours.values() for s in sizes]
    per_hour = sorted(len(v) for v in hours.values())
    return (f"{len(hours)} hour partition(s), {len(files)} files ({statistics.median(per_hour):.0f} per hour), "
            f"median file {statistics.median(files) / 1e6:.1f} MB, largest {max(files) / 1e6:.1f} MB")


def compaction(env, topic) -> None:
    """Drains the topic into a fresh prefix, then OPTIMIZEs it: files per hour before and after,
    and the seconds it took. The current hour counts as closed here (closed_after_s = -3600)."""
    prefix = f"bench/{uuid.uuid4().hex[:8]}"
    kafka = {"client": {"bootstrap.servers": env["SPOTIFY_KAFKA_BOOTSTRAP"]}, "topic": topic, "timeout_s": 60}
    _core.drain(kafka, lake_of(env, prefix), DRAIN)
    before = files_per_hour(env, prefix)
    t = time.perf_counter()
    summary = _core.compact(lake_of(env, prefix), {"closed_after_s": -3600})
    took = time.perf_counter() - t
    after = files_per_hour(env, prefix)
    events = summary[0]
    print(f"\nOPTIMIZE (target 128 MB): before: {describe(before)}")
    print(f"OPTIMIZE: after:  {describe(after)}")
    print(f"OPTIMIZE: {events['files_removed']} files ({events['bytes_removed'] / 1e6:.0f} MB) into {events['files_added']} "
          f"({events['bytes_added'] / 1e6:.0f} MB) in {took:.1f} s ({events['bytes_removed'] / 1e6 / took:.0f} MB/s)")
    delete_prefix(env, prefix)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=2_000_000)
    ap.add_argument("--seed-style-events", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=3, help="interleaved runs of ConsumerPerformance and the drains; medians reported")
    ap.add_argument("--batch-max-mb", type=int, default=None, help="the drain's batch_max_bytes in MiB (default: its own)")
    ap.add_argument("--workers", type=int, default=None, help="the drain's writer threads (default: its own, one per core)")
    ap.add_argument("--skip-weeks", action="store_true", help="leave out the weeks-spanning world")
    ap.add_argument("--skip-peer", action="store_true",
                    help="leave out the Python peer (30 k records/s: 5 min a run on 10 M events)")
    args = ap.parse_args()
    env = stack_env()
    n = args.events
    topic = fresh_topic("drain")
    kafka = {"client": {"bootstrap.servers": env["SPOTIFY_KAFKA_BOOTSTRAP"]}, "topic": topic, "timeout_s": 60}
    produced = _core.produce(kafka, SIM, {"count": n, "partitions": 4})
    mb = produced["bytes"] / 1e6
    print(f"topic {topic}: {n:,} events, {mb:,.0f} MB", flush=True)

    opts = {**DRAIN, **({"batch_max_bytes": args.batch_max_mb << 20} if args.batch_max_mb else {}),
            **({"workers": args.workers} if args.workers is not None else {})}
    # (name, partition sets = tasks, writer threads per task or None for the drain's default)
    paths = [
        ("spotify-pipeline drain, 1 task (Rust)", [[]], None),
        ("spotify-pipeline drain, 2 tasks", [[0, 2], [1, 3]], None),
        ("spotify-pipeline drain, 1 task, 1 writer thread", [[]], 1),
        ("spotify-pipeline drain, 2 tasks, 1 writer thread each", [[0, 2], [1, 3]], 1),
    ]
    cps, rates, rss, samples, peer_rates, commit_rates = [], {name: [] for name, _, _ in paths}, [], [], [], []
    for _ in range(args.repeat):
        cps.append(consumer_performance(env, topic, n))
        print(f"ConsumerPerformance: {cps[-1][0]:,.0f} records/s", flush=True)
        for name, sets, workers in paths:
            run_opts = opts if workers is None else {**opts, "workers": workers}
            prefix = f"bench/{uuid.uuid4().hex[:8]}"
            rows, wall, peak, over = drain_processes(env, topic, prefix, sets, run_opts)
            assert rows == n, rows
            delete_prefix(env, prefix)
            rates[name].append(n / wall)
            line = f"{name}: {n / wall:,.0f} records/s"
            if len(sets) == 1 and workers is None:
                rss.append(peak)
                samples = over
                commit_rates.append(drain_processes.commits_per_s)
                line += (f", peak RSS {peak / 1024:.0f} MB, RSS at 25/50/75/100% of the run: {over_time(over)} MB, "
                         f"{drain_processes.commits_per_s:.1f} Delta commits/s; CPU per record: {drain_processes.cpu}")
            print(line, flush=True)
        if not args.skip_peer:
            peer_rates.append(peer_rate(env, topic, n))
            print(f"{PEER}: {peer_rates[-1]:,.0f} records/s", flush=True)
    cp = (statistics.median_high(r for r, _ in cps), statistics.median_high(m for _, m in cps))
    rate = {name: statistics.median_high(v) for name, v in rates.items()}
    one, rss1 = rate[paths[0][0]], max(rss)
    peer = statistics.median_high(peer_rates) if peer_rates else None
    seed = seed_style(env, topic, args.seed_style_events)
    compaction(env, topic)
    delete_topic(env, topic)

    # The weeks-spanning world: the same drain and peer, interleaved, on events spanning weeks.
    weeks = {}
    if not args.skip_weeks:
        wtopic = fresh_topic("drain-weeks")
        wkafka = {**kafka, "topic": wtopic}
        wp = _core.produce(wkafka, SIM_WEEKS, {"count": n, "partitions": 4})
        print(f"weeks world: {wp['events']:,} events spanning ~{_core.estimated_span_ms(SIM_WEEKS, n) / 86_400_000:.0f} days of event time "
              f"(the hours world: ~{_core.estimated_span_ms(SIM, n) / 3_600_000:.0f} hours)", flush=True)
        w_rates, w_peer = [], []
        for _ in range(args.repeat):
            prefix = f"bench/{uuid.uuid4().hex[:8]}"
            rows, wall, _, _ = drain_processes(env, wtopic, prefix, [[]], opts)
            assert rows == n, rows
            delete_prefix(env, prefix)
            w_rates.append(n / wall)
            w_peer.append(peer_rate(env, wtopic, n))
            print(f"weeks world: drain {w_rates[-1]:,.0f} records/s, Python peer {w_peer[-1]:,.0f} records/s", flush=True)
        delete_topic(env, wtopic)
        weeks = {"drain": statistics.median_high(w_rates), "peer": statistics.median_high(w_peer)}

    rows = [
        ("Kafka ConsumerPerformance (read only)", *cp),
        *((name, r, r * mb / n) for name, r in rate.items()),
        *([(PEER, peer, peer * mb / n)] if peer else []),
        ("seed-style Python consumer (kafka-python + JSON to MinIO)", *seed),
    ]
    print(f"\ndraining {n:,} events ({mb:,.0f} MB, 4 partitions) into MinIO, one broker, 2 cores:\n")
    print(ratio_table(rows, "Kafka ConsumerPerformance (read only)"))
    print(f"\nmedians of {args.repeat}; ours / Python peer: {f'{one / peer:.0f}x' if peer else 'not run'}; ours / seed-style: {one / seed[0]:.0f}x; "
          f"one drain: peak RSS {rss1 / 1024:.0f} MB "
          f"(the highest of the runs), RSS at 25/50/75/100% of the last run {over_time(samples)} MB; "
          f"{statistics.median(commit_rates):.1f} Delta commits/s")
    if weeks:
        print(f"events spanning weeks (500 users): drain {weeks['drain']:,.0f} records/s = {one / weeks['drain']:.2f}x slower than "
              f"on events spanning hours; Python peer {weeks['peer']:,.0f} records/s; ours / peer {weeks['drain'] / weeks['peer']:.0f}x")


if __name__ == "__main__":
    main()
