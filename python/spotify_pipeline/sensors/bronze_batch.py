"""BronzeBatchSensor: wait until committed bronze batches are waiting to be loaded."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from spotify_pipeline.hooks.lake import LakeHook
from spotify_pipeline.sensors.base import CheckThenDeferSensor
from spotify_pipeline.triggers.bronze_batch import BronzeBatchTrigger, batches_ready, drain_loaded, drained_version, unloaded_batches


class BronzeBatchSensor(CheckThenDeferSensor):
    """Succeeds when at least ``min_batches`` files are committed to the lake's bronze Delta tables
    in versions after the warehouse's version ledger: the signal to run a stage.

    The warehouse (DuckDB or Snowflake) comes from ``warehouse_conn_id``'s connection type.
    Deferrable by default (waits in the triggerer). A DuckDB file busy with a writer counts as
    "not yet" and is checked again. Returns ``{"batches", "rows", "versions", "batch_ids",
    "loaded"}`` as XCom.

    ``drained`` (a drain's summary, or a mapped drain's, e.g. ``drain.output``) makes it also
    succeed once the warehouse has loaded what that drain committed: runs that overlap share the
    lake's tables, and the run whose batches another run's stage loaded would otherwise wait for
    batches that never come.
    """

    template_fields: Sequence[str] = ("dataset", "lake_url", "min_batches", "warehouse_conn_id", "drained")
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
        drained: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.lake_url = lake_url
        self.lake_conn_id = lake_conn_id
        self.warehouse_conn_id = warehouse_conn_id
        self.dataset = dataset
        self.schema = schema
        self.min_batches = min_batches
        self.drained = drained

    def check(self) -> tuple[bool, dict[str, Any] | None]:
        pending = unloaded_batches(self.lake_url, self.lake_conn_id, self.dataset, self.warehouse_conn_id, self.schema)
        if pending is None:
            self.log.info("the warehouse file is busy; checking again later")
            return False, None
        self.log.info("%d committed files (%s rows, versions %s) not loaded yet", pending["batches"], f"{pending['rows']:,}", pending["versions"])
        through = drained_version(self.drained)
        if drain_loaded(pending, through):
            self.log.info("the warehouse has loaded the events table through version %d, this run's drain's last", through)
        return batches_ready(pending, int(self.min_batches), through), pending

    def make_trigger(self, deadline: float) -> BronzeBatchTrigger:
        return BronzeBatchTrigger(
            lake_url=self.lake_url, lake_conn_id=self.lake_conn_id, warehouse_conn_id=self.warehouse_conn_id, dataset=self.dataset,
            schema=self.schema, min_batches=int(self.min_batches), drained_through=drained_version(self.drained),
            poke_interval=float(self.poke_interval), deadline=deadline, retries=self.transient_retries,
        )
