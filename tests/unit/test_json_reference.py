"""The ``--json`` reference (docs/cli.md, which the README links to) documents every field the
result rows carry, and no field they do not: a new column cannot reach the JSON undocumented."""

from __future__ import annotations

import datetime as dt
import re

from exp_dagster.cli import result_document
from exp_dagster.home import PROJECT_ROOT
from exp_dagster.result_row import RESULT_COLUMNS, ResultRow

REFERENCE = PROJECT_ROOT / "docs" / "cli.md"


def documented_result_fields() -> set[str]:
    """The names in the first column of the table that follows "Each entry of `results`"."""
    text = REFERENCE.read_text()
    start = text.index("Each entry of `results`")
    table = text[start : text.index("Non-finite numbers", start)]
    names: set[str] = set()
    for line in table.splitlines():
        cells = line.split("|")
        if line.startswith("|") and len(cells) > 2 and "`" in cells[1]:
            names.update(re.findall(r"`([a-z_]+)`", cells[1]))
    return names


def json_result_keys() -> set[str]:
    """The keys of the ``results`` and ``segment_results`` entries of a ``--json`` document."""
    overall = ResultRow(**{**dict.fromkeys(RESULT_COLUMNS), "segment": "all"})
    segment = ResultRow(**{**dict.fromkeys(RESULT_COLUMNS), "segment": "platform"})
    document = result_document(
        "ranker_v2", dt.date(2026, 10, 14), "v1", {}, [dict(overall), dict(segment)]
    )
    (overall_entry,) = document["results"]
    (segment_entry,) = document["segment_results"]
    return set(overall_entry) | set(segment_entry)


def test_every_json_result_field_is_documented() -> None:
    keys = json_result_keys()
    assert {"statistic", "df", "rel_std_error", "sd_control", "cuped_theta"} <= keys
    undocumented = keys - documented_result_fields()
    assert not undocumented, f"add these fields to the --json table of docs/cli.md: {undocumented}"


def test_every_documented_result_field_is_in_the_json() -> None:
    stale = documented_result_fields() - json_result_keys()
    assert not stale, f"docs/cli.md documents --json fields the rows do not carry: {stale}"
