"""One `exp-dagster analyze` run for the integration tests: spec, logs and a work folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from exp_dagster.cli import main


def analyze_json(spec: Path, exposures: Path, events: Path, work: Path, *extra: str) -> Any:
    """Run `analyze` on ``spec`` over the logs, keeping its JSON, reports and home in ``work``;
    the run must succeed. Returns the ``--json`` document."""
    code = main(
        [
            "analyze",
            "--experiment",
            str(spec),
            "--exposures",
            str(exposures),
            "--events",
            str(events),
            "--json",
            str(work / "out.json"),
            "--report-dir",
            str(work / "reports"),
            "--home",
            str(work / "home"),
            *extra,
        ]
    )
    assert code == 0
    return json.loads((work / "out.json").read_text())
