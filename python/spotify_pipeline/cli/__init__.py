"""``spotify-pipeline``: every stage from the command line, outside Airflow (a cron job, a
Kubernetes Job), with the operators' options and the same code underneath.

    spotify-pipeline simulate --count 5 --seed 42                 # print records, one per line
    spotify-pipeline produce --events 1000000                     # to Kafka (--bootstrap, --topic)
    spotify-pipeline stream --rate 2000 --state-dir DIR           # always on; SIGTERM stops it
    spotify-pipeline stream-truth --state-dir DIR --out DIR       # what it sent, regenerated
    spotify-pipeline lag --lake-url s3://spotify-lake --min-lag 1 # exit 0 when a drain is due, 4 if not
    spotify-pipeline drain --lake-url s3://spotify-lake --max-seconds 120
    spotify-pipeline stage --lake-url s3://spotify-lake --duckdb /data/spotify.duckdb
    spotify-pipeline maintain compact --lake-url s3://spotify-lake
    spotify-pipeline maintain vacuum --lake-url s3://spotify-lake --dry-run

Connections come from flags and the environment, never a secret in an argument (see
``spotify_pipeline.cli.connect``). Progress goes to stderr (a bar on a terminal); the summary to
stdout, ``--json`` for scripts. Exit codes: 0 done; 1 failed (Kafka refused, bad data, a
concurrent load moved the ledger); 2 bad input (a flag, a URL, a config file); 3 a service is
unreachable or busy (Kafka, the object store, the warehouse file); 4 ``lag``: no drain due;
130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import sys

from spotify_pipeline import BrokerUnavailableError, ConfigError, LakeError, SpotifyPipelineError
from spotify_pipeline.hooks.duckdb_lock import WarehouseBusy

DONE, FAILED, BAD_INPUT, UNREACHABLE, INTERRUPTED = 0, 1, 2, 3, 130


# Each command's module, imported only for the command that runs (the lake's and the warehouse's
# need Airflow's hooks, ~3 s to import; `simulate` must not wait for that).
COMMANDS = {
    "simulate": ("source", "print simulated records, one per line"),
    "produce": ("source", "simulate events and produce them to Kafka"),
    "stream": ("source", "simulate with no end and produce in real time (or faster); restart-safe"),
    "stream-truth": ("source", "regenerate what a stream sent, from its segment log"),
    "lag": ("lag", "the lake's lag behind the topic; with a threshold, a check for scripts"),
    "drain": ("drain", "drain a topic into the lake's bronze Delta tables, exactly once"),
    "stage": ("stage", "load the lake's new bronze versions into the warehouse, exactly once"),
    "maintain": ("maintain", "OPTIMIZE (compact) or VACUUM the bronze tables"),
}


def parser(command: str | None = None, every: bool = False) -> argparse.ArgumentParser:
    """The parser, with the full options of ``command`` (of every command if ``every``: for the
    docs); the other commands are listed by name and help."""
    import importlib

    ap = argparse.ArgumentParser(prog="spotify-pipeline", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    for name, (module, help) in COMMANDS.items():
        if every or name == command:
            importlib.import_module(f"spotify_pipeline.cli.{module}").add_parser(sub, name, help)
        else:
            sub.add_parser(name, help=help)
    return ap


def exit_code(e: BaseException) -> int:
    """Bad input (2) or an unreachable service (3), told apart from any other failure (1)."""
    if isinstance(e, (ConfigError, ValueError)):
        return BAD_INPUT
    if isinstance(e, (BrokerUnavailableError, LakeError, WarehouseBusy)):
        return UNREACHABLE
    return FAILED


def _log_to_stderr(quiet: bool) -> None:
    """Log lines on stderr, whatever logging Airflow's import set up (its handler writes to
    stdout, where only the summary goes)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log = logging.getLogger("spotify_pipeline")
    log.handlers[:] = [handler]
    log.propagate = False
    log.setLevel(logging.WARNING if quiet else logging.INFO)


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    command = next((w for w in words if not w.startswith("-")), None)
    args = parser(command).parse_args(words)  # a bad flag exits 2, argparse's own code
    _log_to_stderr(quiet=getattr(args, "quiet", False))
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        sys.stderr.write("\ninterrupted\n")
        return INTERRUPTED
    except (SpotifyPipelineError, ValueError, RuntimeError, OSError, WarehouseBusy) as e:
        # Anything else is a bug: its traceback is worth more than a line.
        sys.stderr.write(f"\nerror: {e}\n")
        return exit_code(e)


if __name__ == "__main__":
    sys.exit(main())
