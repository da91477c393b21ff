"""Example DAGs shipped with the provider (not loaded unless a dags folder points here)."""
