"""Triggers behind the deferrable sensors (they wait in the triggerer, not in a worker slot), and
the AssetWatcher trigger that schedules the continuous ingest DAG (records_waiting)."""
