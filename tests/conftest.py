"""Shared fixtures: a small simulated experiment materialised once per test session."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

# The tests simulate experiments on their own dates (some in March 2026, before the project
# catalog's first day): the day partitions start where they always did, whatever the catalog
# holds (exp_dagster.partitions.first_date, dated on import; tests/integration/test_partitions.py
# tests the dating).
os.environ.setdefault("EXP_DAGSTER_FIRST_DATE", "2025-01-01")

import dagster as dg
import pytest

from exp_dagster.definitions import build_definitions
from exp_dagster.resources import Catalog, LandingZone, Warehouse
from exp_dagster.runner import materialize, plan
from exp_dagster.simulate import SimulationConfig, SimulationTruth, simulate
from exp_dagster.spec import ResolvedExperiment

SMALL = SimulationConfig(n_units=6000, days=5, pre_days=3, seed=11)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-slow",
        action="store_true",
        default=False,
        help="also run the long calibration simulations (tests marked slow)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``slow`` (long calibration runs) are skipped unless ``--run-slow`` is given."""
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="long calibration run; opt in with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@dataclass
class Pipeline:
    """A materialised experiment: its definitions, instance, resources and truth."""

    defs: dg.Definitions
    instance: dg.DagsterInstance
    resources: dict[str, dg.ConfigurableResource]
    experiment: ResolvedExperiment
    truth: SimulationTruth
    landing: Path
    database: Path

    @property
    def days(self) -> list[dt.date]:
        return self.experiment.spec.days()


def write_spec(directory: Path, config: SimulationConfig, **overrides: object) -> Path:
    """A catalog folder with the project's metrics and a spec matching a simulation config."""
    import yaml

    from exp_dagster.home import PROJECT_ROOT

    (directory / "experiments").mkdir(parents=True, exist_ok=True)
    (directory / "metrics.yaml").write_text((PROJECT_ROOT / "catalog" / "metrics.yaml").read_text())
    spec = yaml.safe_load((PROJECT_ROOT / "catalog" / "experiments" / "ranker_v2.yaml").read_text())
    spec.update(
        id=config.experiment_id,
        hash_salt=config.salt,
        start=config.start.isoformat(),
        end=(config.start + dt.timedelta(days=config.days - 1)).isoformat(),
        pre_period_days=config.pre_days,
    )
    spec.update(overrides)
    path = directory / "experiments" / f"{spec['id']}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@contextmanager
def materialised(root: Path) -> Iterator[Pipeline]:
    """The SMALL experiment simulated and materialised under ``root``, its instance open."""
    landing = root / "landing"
    truth = simulate(landing, SMALL)
    write_spec(root / "catalog", SMALL)
    database = root / "warehouse.duckdb"
    resources: dict[str, dg.ConfigurableResource] = {
        "warehouse": Warehouse(database=str(database)),
        "landing": LandingZone(
            exposures_path=str(landing / "exposures"),
            events_path=str(landing / "events"),
            # issue 6: the simulator's model logs, evaluated beside the A/B test
            ranking_path=str(landing / "ranking"),
            predictions_path=str(landing / "predictions"),
            interleaving_path=str(landing / "interleaving"),
        ),
        "catalog": Catalog(catalog_dir=str(root / "catalog")),
    }
    defs = build_definitions(resources)
    experiment = resources["catalog"].experiment(SMALL.experiment_id)  # type: ignore[attr-defined]
    with dg.DagsterInstance.ephemeral() as instance:
        the_plan = plan(experiment, resources["landing"].events(), truth.end)  # type: ignore[attr-defined]
        materialize(defs, instance, experiment, the_plan)
        yield Pipeline(defs, instance, resources, experiment, truth, landing, database)


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    with materialised(tmp_path_factory.mktemp("pipeline")) as built:
        yield built
