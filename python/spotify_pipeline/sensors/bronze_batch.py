"""BronzeBatchSensor: wait until committed bronze batches are waiting to be loaded."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import Context

from spotify_pipeline.hooks.lake import LakeHook
from spotify_pipeline.hooks.warehouse import warehouse_hook
from spotify_pipeline.sensors.base import CheckThenDeferSensor
from spotify_pipeline.triggers.bronze_batch import BronzeBatchTrigger, unloaded_batches


class BronzeBatchSensor(CheckThenDeferSensor):
    """Succeeds when at least ``min_batches`` files are committed to the lake's bronze Delta tables
    in versions after the warehouse's version ledger: the signal to run a stage.

    The warehouse (DuckDB or Snowflake) comes from ``warehouse_conn_id``'s connection type.
    Deferrable by default (waits in the triggerer). A DuckDB file busy with a writer counts as
    "not yet" and is checked again. Returns ``{"batches", "rows", "batch_ids"}`` as XCom.
    """

    template_fields: Sequence[str] = ("dataset", "lake_url", "min_batches", "warehouse_conn_id")
    ui_color = "#FFE0B2"
    result_key = "pending"

    def __init__(
        self,
        *,
        lake_url: str,
        lake_conn_id: str | None = LakeHook.default_conn_name,
        warehouse_conn_id: str = "duckdb_default",
        dataset: str = "spotify_events",
        schema: str = "bronze",
        min_batches: int | str = 1,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.lake_url = lake_url
        self.lake_conn_id = lake_conn_id
        self.warehouse_conn_id = warehouse_conn_id
        self.dataset = dataset
        self.schema = schema
        self.min_batches = min_batches

    def _args(self) -> tuple[dict[str, Any], str, dict[str, Any]]:
        warehouse = warehouse_hook(self.warehouse_conn_id, self.schema)
        return LakeHook(self.lake_url, self.lake_conn_id).lake_config(), self.dataset, warehouse.ref()

    def poke(self, context: Context) -> bool:
        self._result = unloaded_batches(*self._args())
        if self._result is None:
            self.log.info("the warehouse file is busy; checking again later")
            return False
        self.log.info("%d committed files (%s rows, versions %s) not loaded yet", self._result["batches"], f"{self._result['rows']:,}", self._result["versions"])
        return self._result["batches"] >= int(self.min_batches)

    def make_trigger(self) -> BronzeBatchTrigger:
        return BronzeBatchTrigger(*self._args(), int(self.min_batches), float(self.poke_interval))
