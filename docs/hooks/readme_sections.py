"""MkDocs hook: a page line ``<!-- readme: Heading -->`` becomes that section of the repository's
README.md (its body, down to the next heading of the same or a higher level), so the README stays
the one place its figures and tables are written and the site cannot drift from it.

The section is adapted to where it lands:
- its sub-headings move up so that the first level below the section is ``##`` (the page's own
  title is the ``#``);
- links are made to resolve from docs/: ``docs/x`` becomes ``x``; a link to another README
  section (``#anchor``) or to a repository file outside docs/ becomes its text (with the file's
  path as code); web links stay. A link to a file that does not exist is left as it is, so
  ``mkdocs build --strict`` still fails on it.

A directive naming a heading the README does not have fails the build.
"""

from __future__ import annotations

import re
from pathlib import Path

_DIRECTIVE = re.compile(r"^<!-- readme: (?P<heading>.+?) -->$", re.MULTILINE)
_HEADING = re.compile(r"^(?P<hashes>#{1,6}) (?P<title>.+?)\s*$")
_FENCE = re.compile(r"^(```|~~~)")
# [text](target) and ![alt](target); the target has no spaces.
_LINK = re.compile(r"(?P<bang>!?)\[(?P<text>[^\]]*)\]\((?P<target>[^)\s]+)\)")


def _sections(readme: str) -> dict[str, tuple[int, list[str]]]:
    """Every heading of the README (outside code fences) -> (its level, its body's lines)."""
    lines = readme.splitlines()
    heads: list[tuple[int, int, str]] = []
    fenced = False
    for i, line in enumerate(lines):
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced and (m := _HEADING.match(line)):
            heads.append((i, len(m["hashes"]), m["title"]))
    out: dict[str, tuple[int, list[str]]] = {}
    for n, (i, level, title) in enumerate(heads):
        end = next((j for j, lv, _ in heads[n + 1:] if lv <= level), len(lines))
        out[title] = (level, lines[i + 1:end])
    return out


def _adapt(body: list[str], level: int, repo: Path) -> str:
    def link(m: re.Match[str]) -> str:
        target = m["target"]
        if re.match(r"^[a-z]+:", target):
            return m[0]
        if target.startswith("#"):
            return m["text"]
        path = target.split("#")[0]
        if path.startswith("docs/"):
            return f"{m['bang']}[{m['text']}]({target[len('docs/'):]})"
        if not m["bang"] and (repo / path).exists():
            return f"{m['text']} (`{path}`)"
        return m[0]  # missing, or an image outside docs/: MkDocs reports it

    out: list[str] = []
    fenced = False
    for line in body:
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            if m := _HEADING.match(line):
                line = "#" * max(2, len(m["hashes"]) - level + 1) + " " + m["title"]
            line = _LINK.sub(link, line)
        out.append(line)
    return "\n".join(out).strip("\n")


def on_page_markdown(markdown: str, page, config, files) -> str:
    repo = Path(config["docs_dir"]).resolve().parent
    sections = _sections((repo / "README.md").read_text())

    def include(m: re.Match[str]) -> str:
        heading = m["heading"]
        if heading not in sections:
            raise ValueError(f"{page.file.src_uri}: README.md has no heading {heading!r}")
        level, body = sections[heading]
        return _adapt(body, level, repo)

    return _DIRECTIVE.sub(include, markdown)
