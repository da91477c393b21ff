"""The warehouse tables a stage writes, the same names in every warehouse."""

from __future__ import annotations


class BronzeTables:
    """``<schema>.<table>`` (events), ``<schema>.<table>_quarantine`` and the ledger
    ``<schema>._loads``. Set ``schema`` and ``table`` (validated identifiers)."""

    schema: str
    table: str

    @property
    def bronze_table(self) -> str:
        return f"{self.schema}.{self.table}"

    @property
    def ledger_table(self) -> str:
        return f"{self.schema}._loads"

    @property
    def quarantine_table(self) -> str:
        return f"{self.schema}.{self.table}_quarantine"
