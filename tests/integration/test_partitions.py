"""The day partitions start where the catalog's data does (issue 20: the UI read "705 partitions,
691 missing" with a fixed 2025-01-01 start)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml

from exp_dagster import partitions, triggers
from exp_dagster.home import PROJECT_ROOT
from exp_dagster.simulate import SimulationConfig
from exp_dagster.spec import ExperimentSpec, earliest_event_day
from tests.conftest import write_spec
from tests.integration.test_automation import requested, tick

pytestmark = [
    pytest.mark.filterwarnings("ignore::dagster.BetaWarning"),
    pytest.mark.filterwarnings("ignore:Non-compliant tag keys:DeprecationWarning"),
]

# Two experiments: the later one starts first but its week of pre-period reaches further back.
EARLY = SimulationConfig(experiment_id="early", start=dt.date(2026, 5, 10), pre_days=7)
LATE = SimulationConfig(experiment_id="late", start=dt.date(2026, 5, 5), pre_days=0)


def catalog(root: Path) -> Path:
    write_spec(root / "catalog", EARLY)
    write_spec(root / "catalog", LATE, pre_period_days=0)
    (root / "catalog" / "experiments" / "broken.yaml").write_text("id: broken\nstart: 2020-\n")
    return root / "catalog"


def test_the_first_day_is_the_earliest_day_any_valid_spec_reads(tmp_path: Path) -> None:
    # 2026-05-10 less 7 pre-period days is before 2026-05-05; the broken spec is left out.
    assert earliest_event_day(catalog(tmp_path) / "experiments") == dt.date(2026, 5, 3)
    assert earliest_event_day(tmp_path / "no-such-folder") is None


def test_first_date_from_the_catalog_else_the_setting_else_the_old_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXP_DAGSTER_CATALOG", str(catalog(tmp_path)))
    monkeypatch.delenv("EXP_DAGSTER_FIRST_DATE")
    assert partitions.first_date() == "2026-05-03"
    monkeypatch.setenv("EXP_DAGSTER_FIRST_DATE", "2026-01-15")
    assert partitions.first_date() == "2026-01-15"  # set by hand, it wins
    monkeypatch.delenv("EXP_DAGSTER_FIRST_DATE")
    monkeypatch.setenv("EXP_DAGSTER_CATALOG", str(tmp_path / "empty"))
    assert partitions.first_date() == "2025-01-01"


def test_the_code_location_dates_its_partitions_from_the_project_catalog() -> None:
    """What `make ui` serves: a fresh process, the setting unset, the project's catalog."""
    env = {k: v for k, v in os.environ.items() if k not in ("EXP_DAGSTER_FIRST_DATE",)}
    env.pop("EXP_DAGSTER_CATALOG", None)
    shown = subprocess.run(
        [
            sys.executable,
            "-c",
            "from exp_dagster.definitions import defs\n"
            "days = defs.resolve_assets_def('event_facts').partitions_def\n"
            "print(days.get_first_partition_key())",
        ],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()[-1]
    specs = [
        ExperimentSpec.model_validate(yaml.safe_load(path.read_text()))
        for path in (PROJECT_ROOT / "catalog" / "experiments").glob("*.yaml")
    ]
    expected = min(spec.start - dt.timedelta(days=spec.pre_period_days) for spec in specs)
    assert shown == expected.isoformat()
    assert dt.date.fromisoformat(shown) > dt.date(2025, 1, 1)


def test_the_registry_holds_back_a_spec_that_reads_days_before_the_partitions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """A spec added after the code location loaded, reading earlier days than its partitions:
    requesting its runs would name partitions that do not exist, so it waits for a reload."""
    write_spec(tmp_path / "catalog", SimulationConfig(experiment_id="ranker_auto", pre_days=2))
    write_spec(tmp_path / "catalog", LATE, pre_period_days=0)
    # As if loaded when only ranker_auto (2026-10-01, 2 pre-period days) was in the catalog.
    monkeypatch.setattr(triggers, "FIRST_DATE", "2026-09-29")
    with dg.instance_for_test() as instance:
        result = tick(triggers.experiment_registry, instance, tmp_path, None)
        assert instance.get_dynamic_partitions("experiment") == ["ranker_auto"]
        assert all("late" not in key for _, key in requested(result))
        log = capfd.readouterr().err
        assert "late: its spec reads days from 2026-05-05, before the first day" in log
        assert "EXP_DAGSTER_FIRST_DATE=2026-05-05" in log
        # After a reload (partitions dated from the catalog again) it is registered.
        monkeypatch.setattr(triggers, "FIRST_DATE", "2026-05-05")
        tick(triggers.experiment_registry, instance, tmp_path, result.cursor)
        assert sorted(instance.get_dynamic_partitions("experiment")) == ["late", "ranker_auto"]
