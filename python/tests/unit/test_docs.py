"""The documentation site (mkdocs.yml, docs/) builds with --strict (no broken link, no warning),
and the operator reference really renders the docstrings (mkdocstrings, static analysis)."""

from __future__ import annotations

import ast
import html
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def _text(page: Path) -> str:
    """A built page's text: tags stripped, entities decoded, whitespace collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", page.read_text())).split())


def _first_paragraph(path: Path, cls: str) -> str:
    """The first paragraph of a class's docstring, as its rendered text reads (no ``code``)."""
    tree = ast.parse(path.read_text())
    node = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls)
    paragraph = ast.get_docstring(node).split("\n\n")[0]
    return " ".join(paragraph.replace("``", "").split())


def test_docs_build_strict_and_render_the_operator_docstrings(tmp_path):
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "DO_NOT_TRACK": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", "mkdocs.yml", "--site-dir", str(site)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr

    reference = _text(site / "reference" / "index.html")
    drain = _first_paragraph(ROOT / "python/spotify_pipeline/operators/drain.py", "KafkaDrainOperator")
    assert drain.startswith("Drains topic up to the high watermarks")
    assert drain in reference, "the operator reference does not show KafkaDrainOperator's docstring"
    for name in ("SpotifyProducerOperator", "StageToWarehouseOperator", "KafkaLagSensor", "RecordsWaitingTrigger"):
        assert name in reference
    for page in ("getting-started", "architecture", "event-contract", "lake-layout", "operations", "performance"):
        assert (site / page / "index.html").is_file(), page


def _table_names(section: str) -> list[tuple[list[str], str]]:
    """The rows of the markdown tables in a section: (the backticked names of the first cell, the
    rest of the row)."""
    rows = []
    for line in section.splitlines():
        if line.startswith("| `"):
            first, rest = line[1:].split("|", 1)
            rows.append((re.findall(r"`([^`]+)`", first), rest))
    return rows


def test_the_event_contract_page_matches_the_core():
    """docs/event-contract.md writes the contract out for readers; the core is where it is
    defined. Every column, its order, its nullability and every reason code must agree."""
    from spotify_pipeline import _core

    page = (ROOT / "docs/event-contract.md").read_text()
    parts = dict(re.findall(r"^## (.+?)\n(.*?)(?=^## |\Z)", page, flags=re.MULTILINE | re.DOTALL))

    bronze = [c for c in _core.load_columns("events") if c[0] != "source_file"]  # the stage adds it
    documented = _table_names(parts["Fields"])
    assert [n for names, _ in documented for n in names] == [c[0] for c in bronze]
    nullable = {n for names, rest in documented for n in names if "nullable" in rest or "optional" in rest}
    assert nullable == {c[0] for c in bronze if c[2]}

    assert [names[0] for names, _ in _table_names(parts["Reason codes"])] == _core.reject_reasons()

    quarantine = [c[0] for c in _core.load_columns("quarantine") if c[0] != "source_file"]
    assert [n for names, _ in _table_names(parts["The quarantine record"]) for n in names] == quarantine
