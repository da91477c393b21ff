"""The command line's own logic: exit codes, connection settings from flags and the
environment, the same defaults as the operators, and a start that does not wait for Airflow."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

import spotify_pipeline as sp
from spotify_pipeline.cli import BAD_INPUT, FAILED, UNREACHABLE, exit_code, parser
from spotify_pipeline.cli.connect import lake_config, read_kafka_config
from spotify_pipeline.hooks.duckdb_lock import WarehouseBusy


@pytest.mark.parametrize(("error", "code"), [
    (sp.ConfigError("bad option"), BAD_INPUT),
    (ValueError("bad url"), BAD_INPUT),
    (sp.BrokerUnavailableError("no broker"), UNREACHABLE),
    (sp.LakeError("no store"), UNREACHABLE),
    (WarehouseBusy("held by pid 1"), UNREACHABLE),
    (sp.KafkaError("refused"), FAILED),
    (sp.DataError("bad parquet"), FAILED),
    (RuntimeError("another load moved the ledger"), FAILED),
])
def test_exit_codes_tell_bad_input_from_an_unreachable_service(error, code):
    assert exit_code(error) == code


def test_kafka_config_file_is_key_value_lines_and_a_bad_line_is_named(tmp_path):
    good = tmp_path / "client.properties"
    good.write_text("# SASL\nsecurity.protocol = SASL_SSL\n\nsasl.password=a=b\n")
    assert read_kafka_config(str(good)) == {"security.protocol": "SASL_SSL", "sasl.password": "a=b"}
    bad = tmp_path / "bad.properties"
    bad.write_text("security.protocol=SASL_SSL\nsasl.mechanism\n")
    with pytest.raises(ValueError, match="line 2: not key=value"):
        read_kafka_config(str(bad))
    with pytest.raises(ValueError, match="No such file"):
        read_kafka_config(str(tmp_path / "missing"))


def test_the_lake_comes_from_the_aws_variables_and_a_bad_url_is_refused(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000")
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    args = parser("drain").parse_args(["drain", "--lake-url", "s3://bucket/prefix"])
    assert lake_config(args) == {"url": "s3://bucket/prefix", "options": {
        "aws_access_key_id": "key", "aws_secret_access_key": "secret", "aws_endpoint": "http://127.0.0.1:9000",
        "aws_allow_http": "true", "aws_region": "us-east-1",
    }}
    assert lake_config(parser("drain").parse_args(["drain", "--lake-url", "file:///tmp/lake"])) == {"url": "file:///tmp/lake", "options": {}}
    with pytest.raises(ValueError, match="must be s3://"):
        lake_config(parser("drain").parse_args(["drain", "--lake-url", "http://x"]))


def _defaults(operator: type) -> dict:
    return {k: p.default for k, p in inspect.signature(operator.__init__).parameters.items() if p.default is not inspect.Parameter.empty}


def test_the_commands_default_to_what_the_operators_do():
    from spotify_pipeline.operators.drain import KafkaDrainOperator
    from spotify_pipeline.operators.maintain import LakeCompactOperator, LakeVacuumOperator
    from spotify_pipeline.operators.stage import StageToWarehouseOperator

    checks = [
        (KafkaDrainOperator, ["drain"], ["group_id", "idle_timeout_s", "dataset", "raw", "max_records", "max_seconds",
                                        "allow_data_loss", "reset_offsets", "batch_max_records", "workers", "timeout_s"]),
        (StageToWarehouseOperator, ["stage"], ["dataset", "schema", "table", "load_reference", "chunk_rows", "chunk_versions"]),
        (LakeCompactOperator, ["maintain", "compact"], ["dataset", "target_file_bytes", "closed_after_s"]),
        (LakeVacuumOperator, ["maintain", "vacuum"], ["dataset", "retention_hours", "dry_run"]),
    ]
    for operator, words, names in checks:
        args, op = vars(parser(words[0]).parse_args(words)), _defaults(operator)
        assert {n: args[n] for n in names} == {n: op[n] for n in names}, operator.__name__


def test_every_command_builds_and_a_bad_flag_exits_2(capsys):
    every = parser(every=True)
    for words in (["simulate"], ["produce"], ["stream"], ["stream-truth", "--out", "x"], ["lag"], ["drain"], ["stage"],
                  ["maintain", "compact"], ["maintain", "vacuum"]):
        assert every.parse_args(words).run
    with pytest.raises(SystemExit) as bad:
        parser("drain").parse_args(["drain", "--partition-share", "1"])
    assert bad.value.code == BAD_INPUT and "INDEX/COUNT" in capsys.readouterr().err


def test_the_source_commands_start_without_airflow():
    code = ("import sys; from spotify_pipeline.cli import main; main(['simulate', '--count', '2']); "
            "assert 'airflow' not in sys.modules, 'simulate imported Airflow'")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == 2
