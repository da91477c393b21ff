"""What the deferrable sensors share: check once in the worker, then wait in the triggerer."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseSensorOperator, Context
from airflow.triggers.base import BaseTrigger


class CheckThenDeferSensor(BaseSensorOperator):
    """Subclasses say how to check (``poke``, keeping its result in ``self._result``) and which
    trigger waits for them (``make_trigger``); the event's ``result_key`` is the XCom."""

    result_key = "result"

    def __init__(self, *, deferrable: bool = True, **kwargs: Any) -> None:
        kwargs.setdefault("poke_interval", 30)
        super().__init__(**kwargs)
        self.deferrable = deferrable
        self._result: dict[str, Any] | None = None

    def make_trigger(self) -> BaseTrigger:
        raise NotImplementedError

    def execute(self, context: Context) -> Any:
        if self.poke(context):
            return self._result
        if not self.deferrable:
            super().execute(context)
            return self._result
        self.defer(trigger=self.make_trigger(), method_name="execute_complete", timeout=self.execution_timeout)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        if event.get("status") != "ready":
            raise RuntimeError(f"{type(self).__name__}: {event.get('message', event)}")
        return event[self.result_key]
