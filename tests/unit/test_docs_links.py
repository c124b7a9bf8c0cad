"""The README and docs/ hold together: every relative link points at a file that exists (and an
anchor at a heading of it), and every docstring's citation of docs/architecture.md names a
decision or section the page has."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from exp_dagster.home import PROJECT_ROOT

PAGES = [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)#\s]+\.md)(?:#([^)\s]+))?\)")


def anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#+ (.+)$", page.read_text(), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_resolve(page: Path) -> None:
    broken = []
    for target, anchor in LINK.findall(page.read_text()):
        if target.startswith("http"):
            continue
        path = (page.parent / target).resolve()
        if not path.exists():
            broken.append(target)
        elif anchor and anchor not in anchors(path):
            broken.append(f"{target}#{anchor}")
    assert not broken, f"{page.name} links to {broken}"


def test_architecture_citations_name_what_the_page_has() -> None:
    page = (PROJECT_ROOT / "docs" / "architecture.md").read_text()
    decisions = {int(n) for n in re.findall(r"^(\d+)\. \*\*", page, re.M)}
    sections = {h.lower() for h in re.findall(r"^## (.+)$", page, re.M)}
    cited = []
    for source in [
        *PROJECT_ROOT.joinpath("exp_dagster").rglob("*.py"),
        PROJECT_ROOT / "pyproject.toml",
    ]:
        text = " ".join(source.read_text().split())
        for what in re.findall(r"docs/architecture\.md,? (decision \d+|\"?[A-Za-z]+\"?)", text):
            cited.append((source.name, what))
    assert cited, "no docstring cites docs/architecture.md"
    for name, what in cited:
        if what.startswith("decision "):
            assert int(what.split()[1]) in decisions, (name, what)
        else:
            assert any(what.strip('"').lower() in s for s in sections), (name, what)
