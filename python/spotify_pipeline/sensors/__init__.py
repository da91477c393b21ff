"""Deferrable sensors: ``KafkaLagSensor`` and ``BronzeBatchSensor``.

Not in this release: they arrive with the exactly-once drain and the staging ledger work
(issues 4 and 5). The walking skeleton runs produce -> drain -> stage -> dbt back to back.
"""
