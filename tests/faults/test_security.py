"""Security basics: the landing zone cannot be escaped, identifiers from specs never reach SQL
unchecked, and the UI listens on localhost only."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest
import yaml

from exp_dagster.home import PROJECT_ROOT
from exp_dagster.warehouse.landing import InputError, LogSource, stage_raw
from tests.faults.corpus import DAY, day_folder, events, hive


def test_a_symlink_out_of_the_landing_zone_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "secrets"
    hive(outside, "events", events())
    landing = tmp_path / "landing"
    day_folder(landing, "events").mkdir(parents=True)
    link = day_folder(landing, "events") / "part-0.parquet"
    link.symlink_to(day_folder(outside, "events") / "part-0.parquet")
    conn = duckdb.connect()
    with pytest.raises(InputError) as error:
        stage_raw(conn, LogSource("events", landing / "events"), DAY, "raw_events")
    assert "part-0.parquet: links outside the landing zone" in str(error.value)


def test_column_names_that_are_not_identifiers_never_reach_sql(tmp_path: Path) -> None:
    source = hive(tmp_path, "events", events())
    with pytest.raises(ValueError, match="invalid column name"):
        stage_raw(duckdb.connect(), source, DAY, "raw_events", ['x" FROM t; DROP TABLE t; --'])


def test_sql_takes_values_only_as_bound_parameters() -> None:
    """No SQL file interpolates text: values enter as $parameters, never by formatting."""
    folder = PROJECT_ROOT / "exp_dagster" / "warehouse" / "sql"
    for path in folder.glob("*.sql"):
        text = path.read_text()
        assert not re.search(r"\{[a-z_]+\}|%s|%\(", text), path.name


def test_the_ui_listens_on_localhost_only() -> None:
    makefile = (PROJECT_ROOT / "Makefile").read_text().splitlines()
    # The ui target's recipe: exp_dagster.ui passes its arguments to `dagster dev` unchanged.
    (recipe,) = [makefile[i + 1] for i, line in enumerate(makefile) if line.startswith("ui:")]
    assert "-m exp_dagster.ui" in recipe and "-h 127.0.0.1" in recipe
    launcher = (PROJECT_ROOT / "exp_dagster" / "ui.py").read_text()
    assert '"dev", *(sys.argv[1:]' in launcher and "0.0.0.0" not in launcher
    workspace = yaml.safe_load((PROJECT_ROOT / "workspace.yaml").read_text())
    assert "0.0.0.0" not in repr(workspace)
