"""The chaos soak, short: four minutes of a real stream into real Airflow components with a fault
every ~15 s (every kind, in a shuffled cycle), then every layer reconciled (see ``soak.py``; the
README reports an hour of it). The stream is produced outside Airflow, as an app's would be: the
ingest runs come from the AssetWatcher's trigger, and may overlap."""

from __future__ import annotations

import pytest

from soak import FAULT_KINDS, soak

pytestmark = pytest.mark.e2e


def test_a_short_soak_with_chaos_loses_and_duplicates_nothing(stack, tmp_path):
    report = soak(stack, tmp_path, minutes=4, seed=11, rate=300, fault_every_s=15, every_kind=True)
    print("\n" + report.table())
    assert report.ok, report.table()
    assert {f.kind for f in report.faults} == set(FAULT_KINDS), report.table()
    assert sum(f.done for f in report.faults) >= 6, report.table()
    assert report.events > 20_000  # 300/s is a day's mean: the hour of day moves it
    # Records arriving ran the ingest through its watcher, not only on its fallback cron.
    assert report.run_types["spotify_ingest"]["asset_triggered"] > 0, report.table()
