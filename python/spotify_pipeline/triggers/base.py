"""What the triggers share: check in a thread every ``poke_interval`` seconds until ready."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent


class PollingTrigger(BaseTrigger):
    """Subclasses implement ``check`` (blocking: it runs in a thread, off the triggerer's event
    loop) and ``is_ready``. Fires ``{"status": "ready", result_key: result}``, or
    ``{"status": "error", "message": ...}`` when a check raises."""

    result_key = "result"

    def __init__(self, poke_interval: float) -> None:
        super().__init__()
        self.poke_interval = poke_interval

    def check(self) -> Any:
        raise NotImplementedError

    def is_ready(self, result: Any) -> bool:
        raise NotImplementedError

    async def run(self) -> AsyncIterator[TriggerEvent]:
        while True:
            try:
                result = await asyncio.to_thread(self.check)
            except Exception as e:  # noqa: BLE001 - reported to the sensor, which fails the task
                yield TriggerEvent({"status": "error", "message": f"{type(e).__name__}: {e}"})
                return
            if self.is_ready(result):
                yield TriggerEvent({"status": "ready", self.result_key: result})
                return
            self.log.info("not ready (%s); next check in %ss", result, self.poke_interval)
            await asyncio.sleep(self.poke_interval)
