"""Hooks turn Airflow Connections into the configs the Rust core takes."""
