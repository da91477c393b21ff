"""Producing benchmark: events/s and MB/s, side by side in one run, as ratios.

    .venv/bin/python bench/produce.py [--events 1000000] [--seed-style-events 20000]

Paths measured against the same local broker, with the same records (our simulated JSON), the
same acks=all, idempotence and lz4 compression:
  1. simulation alone (JSON serialization, one core, no Kafka);
  2. our producer (Rust, rdkafka), `_core.produce`;
  3. Kafka's own org.apache.kafka.tools.ProducerPerformance, fed our events as its payload file;
  4. a seed-style Python producer (Faker + kafka-python, as the seed README's producer).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import create_topic, fresh_topic, kafka_tool, parse_producer_performance, ratio_table, stack_env  # noqa: E402

from spotify_pipeline import _core  # noqa: E402

SIM = {"seed": 1, "start_ms": 1_768_435_200_000, "span_ms": 3 * 3_600_000, "users": 5_000, "songs": 20_000, "zipf_s": 1.1}
PRODUCER = {"acks": "all", "enable.idempotence": "true", "compression.type": "lz4", "linger.ms": "20", "batch.size": "1000000"}


def seed_style(bootstrap: str, topic: str, n: int) -> tuple[float, float]:
    from faker import Faker
    from kafka import KafkaProducer

    fake = Faker()
    # As the seed ran it: no compression (kafka-python has no lz4 codec without extra packages).
    p = KafkaProducer(bootstrap_servers=bootstrap, acks="all",
                      value_serializer=lambda v: json.dumps(v).encode())
    actions = ["play", "skip", "pause", "add_to_playlist"]
    size = 0
    t = time.perf_counter()
    for _ in range(n):
        event = {
            "event_id": str(uuid.uuid4()), "user_id": fake.uuid4(), "song_id": fake.uuid4(),
            "song_name": fake.sentence(nb_words=3), "artist_name": fake.name(),
            "action": random.choice(actions), "device_type": random.choice(["mobile", "desktop", "web"]),
            "country": fake.country_code(), "timestamp": datetime.now(timezone.utc).isoformat(),
        }
        size += len(json.dumps(event))
        p.send(topic, event)
    p.flush()
    s = time.perf_counter() - t
    p.close()
    return n / s, size / 1e6 / s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--seed-style-events", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each Kafka path, interleaved; the median is reported")
    args = ap.parse_args()
    env = stack_env()
    bootstrap = env["SPOTIFY_KAFKA_BOOTSTRAP"]
    n = args.events
    rows = []

    sim = _core.simulate_throughput(SIM, n)
    rows.append(("simulation alone (1 core)", sim["events_per_s"], sim["mb_per_s"]))
    print(f"simulation: {sim['events_per_s']:,.0f} events/s, {sim['bytes'] / n:.0f} bytes/event", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        payloads = Path(tmp) / "events.jsonl"
        _core.simulate_to_file(SIM, min(n, 200_000), str(payloads))
        props = [f"bootstrap.servers={bootstrap}"] + [f"{k}={v}" for k, v in PRODUCER.items()]
        ours_runs, kafka_runs = [], []
        # Interleaved, so that a slow moment of the machine hits both paths alike.
        for _ in range(args.repeat):
            topic = fresh_topic("ours")
            kafka = {"client": {"bootstrap.servers": bootstrap}, "topic": topic, "timeout_s": 60}
            s = _core.produce(kafka, SIM, {"count": n, "partitions": 3, "replication": 1, "compression": "lz4"})
            # From first send to last acknowledgement, as ProducerPerformance measures.
            ours_runs.append((n / s["elapsed_s"], s["bytes"] / 1e6 / s["elapsed_s"]))
            topic = fresh_topic("kafka")
            create_topic(env, topic)
            out = kafka_tool(env, "org.apache.kafka.tools.ProducerPerformance", "--topic", topic, "--num-records", str(n),
                             "--throughput", "-1", "--payload-file", str(payloads), "--producer-props", *props)
            kafka_runs.append(parse_producer_performance(out))
            print(f"ours {ours_runs[-1][0]:,.0f}/s, ProducerPerformance {kafka_runs[-1][0]:,.0f}/s", flush=True)
    rows.append(("spotify-pipeline producer (Rust)", *statistics.median_high(ours_runs)))
    rows.append(("Kafka ProducerPerformance (Java)", *statistics.median_high(kafka_runs)))

    topic = fresh_topic("seed")
    create_topic(env, topic)
    rps, mbps = seed_style(bootstrap, topic, args.seed_style_events)
    rows.append(("seed-style Python (Faker + kafka-python)", rps, mbps))

    print(f"\nproducing {n:,} events, acks=all, idempotent, lz4, 3 partitions, one broker on 127.0.0.1:\n")
    print(ratio_table(rows, "Kafka ProducerPerformance (Java)"))
    print(f"\nours / seed-style: {rows[1][1] / rows[3][1]:.0f}×")


if __name__ == "__main__":
    main()
