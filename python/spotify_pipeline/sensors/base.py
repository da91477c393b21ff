"""What the deferrable sensors share: check once in the worker, then wait in the triggerer, for
at most the sensor's ``timeout``."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator, Context
from airflow.sdk.exceptions import AirflowSensorTimeout

from spotify_pipeline.triggers.base import DEFAULT_RETRIES, TRANSIENT, PollingTrigger, floored_interval


class CheckThenDeferSensor(BaseSensorOperator):
    """Subclasses say how to check (``check``, returning ``(ready, result)``) and which trigger
    waits for them (``make_trigger``); the event's ``result_key`` is the XCom.

    - The wait ends at ``timeout`` (seconds), deferred or not: the trigger gets the deadline, and
      the deferral Airflow's own timeout.
    - ``poke_interval`` has a floor of one second (``MIN_POKE_INTERVAL_S``).
    - A transient error (broker or lake unreachable) is retried ``transient_retries`` times in a
      row, with waits doubling from ``poke_interval``; other errors fail at once.
    """

    result_key = "result"

    def __init__(self, *, deferrable: bool = True, transient_retries: int = DEFAULT_RETRIES, **kwargs: Any) -> None:
        interval = kwargs.get("poke_interval", 30)
        kwargs["poke_interval"] = floored_interval(interval.total_seconds() if isinstance(interval, timedelta) else interval)
        super().__init__(**kwargs)
        self.deferrable = deferrable
        self.transient_retries = transient_retries
        self._result: dict[str, Any] | None = None
        self._failures = 0

    def check(self) -> tuple[bool, Any]:
        raise NotImplementedError

    def make_trigger(self, deadline: float) -> PollingTrigger:
        raise NotImplementedError

    def poke(self, context: Context) -> bool:
        try:
            ready, self._result = self.check()
        except TRANSIENT as e:
            self._failures += 1
            if self._failures > self.transient_retries:
                raise
            self.log.warning("check failed (%s: %s); %d of %d retries", type(e).__name__, e, self._failures, self.transient_retries)
            return False
        self._failures = 0
        return ready

    def execute(self, context: Context) -> Any:
        if self.poke(context):
            return self._result
        if not self.deferrable:
            super().execute(context)
            return self._result
        self.defer(
            trigger=self.make_trigger(time.time() + self.timeout),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        if event.get("status") == "timeout":
            raise AirflowSensorTimeout(f"{type(self).__name__}: {event.get('message')} (timeout {self.timeout}s)")
        if event.get("status") != "ready":
            raise RuntimeError(f"{type(self).__name__}: {event.get('message', event)}")
        result: dict[str, Any] = event[self.result_key]
        return result
