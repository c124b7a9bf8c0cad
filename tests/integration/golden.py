"""The statistical outputs of the session pipeline (tests/conftest.py) as one JSON file, so that a
change to how they are computed can be checked to give the very same numbers.

``tests/integration/golden/pipeline_outputs.json`` was written by this module with the code of
main at 0b86a52 (7c9a576 wrote the same file)::

    .venv/bin/python -m tests.integration.golden tests/integration/golden/pipeline_outputs.json

Floats are stored by ``repr`` (JSON numbers that read back to the same double), dates as ISO
text; rows are ordered by every column, as :func:`snapshot` reads them.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import duckdb

# The sufficient statistics every result and decision is computed from (the quantile histograms,
# 19,000 rows of integer counts, are checked through the results they give), and those results
# and decisions.
TABLES = (
    "metric_statistics",
    "novelty_statistics",
    "metric_outliers",
    "results",
    "decision",
)


def _plain(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def snapshot(conn: duckdb.DuckDBPyConnection, experiment_id: str) -> dict[str, Any]:
    """Every row of :data:`TABLES` for the experiment, as JSON-ready lists, with column names."""
    tables: dict[str, Any] = {}
    for table in TABLES:
        cursor = conn.execute(
            f"SELECT * FROM {table} WHERE experiment_id = ? ORDER BY ALL", [experiment_id]
        )
        columns = [d[0] for d in cursor.description or []]
        rows = [[_plain(v) for v in row] for row in cursor.fetchall()]
        tables[table] = {"columns": columns, "rows": rows}
    return tables


def _build(root: Path) -> dict[str, Any]:
    """Materialise the session pipeline's experiment (tests/conftest.py) under ``root``."""
    from tests.conftest import SMALL, materialised

    with materialised(root) as built, duckdb.connect(str(built.database), read_only=True) as conn:
        return snapshot(conn, SMALL.experiment_id)


def dump(tables: dict[str, Any]) -> str:
    """JSON with one row a line, so that a change shows as the rows it changes."""
    parts = [
        f'{json.dumps(name)}: {{"columns": {json.dumps(table["columns"])}, "rows": [\n'
        + ",\n".join(json.dumps(row) for row in table["rows"])
        + "\n]}"
        for name, table in sorted(tables.items())
    ]
    return "{\n" + ",\n".join(parts) + "\n}\n"


def main(out: str) -> None:
    with tempfile.TemporaryDirectory(prefix="golden-") as tmp:
        tables = _build(Path(tmp))
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(dump(tables))


if __name__ == "__main__":
    main(sys.argv[1])
