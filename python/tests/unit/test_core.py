"""The Rust core through its Python face, with no servers."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from spotify_pipeline import _core
import spotify_pipeline as sp

SIM = {"seed": 7, "start_ms": 1_768_435_200_000, "users": 100, "songs": 500}


def test_simulation_is_deterministic_and_meets_the_contract():
    a = _core.simulate(SIM, 500)
    assert a == _core.simulate(SIM, 500)
    assert a != _core.simulate({**SIM, "seed": 8}, 500)
    assert {kind for kind, _ in a} == {"valid"}
    events = [json.loads(e) for _, e in a]
    assert len({e["event_id"] for e in events}) == 500
    required = {c for c, _, nullable in _core.load_columns() if not nullable} - {
        "kafka_topic", "kafka_partition", "kafka_offset", "source_file",
    }
    for e in events:
        assert required <= e.keys()
        assert e["event_ts"].endswith("Z") and e["event_ts"] >= "2026-01-15T00:00:00"


def test_simulated_faults_are_labelled_with_the_truth():
    faults = {"duplicate_rate": 0.05, "malformed_rate": 0.05, "late_rate": 0.05, "max_late_ms": 3_600_000}
    records = _core.simulate({**SIM, "faults": faults}, 5_000)
    kinds = [k for k, _ in records]
    assert {"valid", "duplicate"} <= set(kinds)
    assert {k.split(":")[1] for k in kinds if k.startswith("malformed:")} == {
        "invalid_json", "not_utf8", "missing_field", "wrong_type", "unknown_event_type", "oversized",
    }
    # Duplicates repeat an event_id delivered before, byte for byte.
    seen = {}
    for kind, r in records:
        if kind == "valid":
            seen[json.loads(r)["event_id"]] = r
        elif kind == "duplicate":
            assert seen.get(json.loads(r)["event_id"]) == r


def test_errors_form_one_hierarchy():
    for cls in (sp.ConfigError, sp.BrokerUnavailableError, sp.KafkaError, sp.LakeError, sp.DataError):
        assert issubclass(cls, sp.SpotifyPipelineError)
    with pytest.raises(sp.ConfigError, match="users"):
        _core.simulate({**SIM, "users": 0}, 1)
    with pytest.raises(sp.ConfigError, match="sim"):
        _core.simulate({"seed": "not a number"}, 1)
    with pytest.raises(sp.ConfigError, match="absolute"):
        _core.pending_versions({"url": "relative/dir", "options": {}}, "spotify_events", -1, -1)
    # Drain options are checked before any server is contacted (none runs in unit tests).
    kafka = {"client": {"bootstrap.servers": "127.0.0.1:1"}, "topic": "t"}
    for bad in ({"buffer_max_bytes": 0}, {"batch_max_bytes": 0}, {"batch_max_records": 0}):
        with pytest.raises(sp.ConfigError, match=next(iter(bad))):
            _core.drain(kafka, {"url": "file:///tmp/unused-lake"}, bad)
    with pytest.raises(sp.ConfigError, match="workers"):
        _core.drain(kafka, {"url": "file:///tmp/unused-lake"}, {"workers": -1})


NOTHING_PENDING = {"events_version": -1, "quarantine_version": -1, "events": [], "quarantine": []}


def test_a_local_lake_without_tables_has_nothing_pending(tmp_path):
    lake = {"url": f"file://{tmp_path}", "options": {}}
    assert _core.pending_versions(lake, "spotify_events", -1, -1) == NOTHING_PENDING
    assert _core.prepare_files(lake, "events", [], str(tmp_path / "out")) == []
    with pytest.raises(sp.ConfigError, match="events or quarantine"):
        _core.prepare_files(lake, "nope", [], str(tmp_path / "out"))


def test_the_gil_is_released_during_long_work():
    ticks = 0
    stop = threading.Event()

    def count():
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            time.sleep(0.001)

    t = threading.Thread(target=count)
    t.start()
    started = time.perf_counter()
    _core.simulate(SIM, 300_000)
    elapsed = time.perf_counter() - started
    stop.set()
    t.join()
    # With the GIL held for the whole call, the other thread could not tick at all.
    assert elapsed > 0.05
    assert ticks > 10, f"only {ticks} ticks in {elapsed:.2f}s"


def test_runtime_survives_fork(tmp_path):
    """Airflow's executors fork; the tokio runtime must be rebuilt in the child, not deadlock."""
    lake = {"url": f"file://{tmp_path}", "options": {}}
    assert _core.pending_versions(lake, "spotify_events", -1, -1) == NOTHING_PENDING  # the parent builds its runtime
    pid = os.fork()
    if pid == 0:  # child
        try:
            ok = _core.pending_versions(lake, "spotify_events", -1, -1) == NOTHING_PENDING
        finally:
            os._exit(0 if ok else 1)
    deadline = time.time() + 30
    while time.time() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0
            return
        time.sleep(0.05)
    os.kill(pid, 9)
    pytest.fail("the forked child hung using the tokio runtime")


def test_progress_callback_errors_stop_the_work_and_propagate(tmp_path):
    """A Python exception raised by the progress callback surfaces as itself."""

    class Stop(Exception):
        pass

    def progress(p):
        raise Stop("user asked to stop")

    lake = {"url": f"file://{tmp_path}", "options": {}}
    with pytest.raises(Stop):
        _core.prepare_files(lake, "events", [], str(tmp_path / "out"), progress)


def test_silver_accepts_exactly_the_reasons_the_drain_refuses_for():
    """The reject reasons are written once, in the core (event::Reason): dbt's accepted values for
    the quarantine's reason must be the same list, or a new reason would fail silver's tests."""
    import yaml

    models = yaml.safe_load((Path(__file__).resolve().parents[3] / "dbt/models/staging/_spotify__models.yml").read_text())
    quarantine = next(m for m in models["models"] if m["name"] == "stg_spotify__quarantined_records")
    reason = next(c for c in quarantine["columns"] if c["name"] == "reason")
    accepted = next(t["accepted_values"]["arguments"]["values"] for t in reason["data_tests"] if isinstance(t, dict) and "accepted_values" in t)
    assert sorted(accepted) == sorted(_core.reject_reasons())
    assert "empty_value" in _core.reject_reasons() and len(set(_core.reject_reasons())) == len(_core.reject_reasons())
