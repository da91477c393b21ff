"""What the triggers share: check every ``poke_interval`` seconds until ready, the sensor's
deadline passes, or checks keep failing.

Triggers carry connection ids, never resolved configs: Airflow stores trigger arguments in its
metadata database, and a resolved Kafka config or lake config holds passwords and secret keys.
Each check resolves the connections in the triggerer (through ``sync_to_async``, the way Airflow
3's triggerer serves connections to a trigger without blocking its event loop).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from spotify_pipeline import BrokerUnavailableError, KafkaError, LakeError

# A check is a broker metadata round trip and a listing of the Delta log (20-60 ms here); a floor
# of one second keeps a `poke_interval=0` from turning a sensor into a busy loop.
MIN_POKE_INTERVAL_S = 1.0
# Failures that a later check can outlive: a broker restarting, the object store unreachable for a
# moment, a socket timing out. Anything else (a bad config, a missing connection) fails at once.
TRANSIENT = (BrokerUnavailableError, KafkaError, LakeError, OSError, TimeoutError)
# Consecutive transient failures before the sensor fails; waits double from poke_interval.
DEFAULT_RETRIES = 3


def floored_interval(poke_interval: float) -> float:
    return max(float(poke_interval), MIN_POKE_INTERVAL_S)


class PollingTrigger(BaseTrigger):
    """Subclasses implement ``check`` (blocking: it runs off the triggerer's event loop),
    ``is_ready`` and ``kwargs``. Fires ``{"status": "ready", result_key: result}``;
    ``{"status": "timeout", ...}`` once ``deadline`` (epoch seconds) passes; ``{"status":
    "error", ...}`` on a permanent error or after ``retries`` transient ones in a row."""

    result_key = "result"

    def __init__(self, poke_interval: float, deadline: float | None = None, retries: int = DEFAULT_RETRIES) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # unannotated in Airflow; super() escapes untyped_calls_exclude
        self.poke_interval = floored_interval(poke_interval)
        self.deadline = deadline
        self.retries = retries

    def check(self) -> Any:
        raise NotImplementedError

    def is_ready(self, result: Any) -> bool:
        raise NotImplementedError

    def kwargs(self) -> dict[str, Any]:
        """The subclass's own constructor arguments (connection ids and thresholds, no secrets)."""
        raise NotImplementedError

    def serialize(self) -> tuple[str, dict[str, Any]]:
        path = f"{type(self).__module__}.{type(self).__qualname__}"
        return path, {**self.kwargs(), "poke_interval": self.poke_interval, "deadline": self.deadline, "retries": self.retries}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        # Imported here, in the triggerer only: imported before the core in a process that later
        # forks, it made the forked child's first core call hang 2 times in 3 (see the README).
        from asgiref.sync import sync_to_async

        failures = 0
        while True:
            if self.deadline is not None and time.time() >= self.deadline:
                yield TriggerEvent({"status": "timeout", "message": f"not ready by the sensor's deadline ({self.deadline:.0f})"})
                return
            try:
                result = await sync_to_async(self.check, thread_sensitive=False)()
            except TRANSIENT as e:
                failures += 1
                if failures > self.retries:
                    yield TriggerEvent({"status": "error", "message": f"{type(e).__name__} on {failures} checks in a row: {e}"})
                    return
                delay = self.poke_interval * 2 ** (failures - 1)
                self.log.warning("check failed (%s: %s); %d of %d retries, next in %.0fs", type(e).__name__, e, failures, self.retries, delay)
                await asyncio.sleep(self._capped(delay))
                continue
            except Exception as e:  # noqa: BLE001 - reported to the sensor, which fails the task
                yield TriggerEvent({"status": "error", "message": f"{type(e).__name__}: {e}"})
                return
            failures = 0
            if self.is_ready(result):
                yield TriggerEvent({"status": "ready", self.result_key: result})
                return
            self.log.info("not ready (%s); next check in %ss", result, self.poke_interval)
            await asyncio.sleep(self._capped(self.poke_interval))

    def _capped(self, delay: float) -> float:
        """``delay``, but no later than the deadline."""
        return delay if self.deadline is None else max(0.0, min(delay, self.deadline - time.time()))
