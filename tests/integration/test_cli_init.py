"""`exp-dagster init` writes a spec (and a metric catalog) that load, refuse to overwrite, and
carry an experiment from nothing to a decision with `analyze`."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from exp_dagster.cli import main
from exp_dagster.simulate import SimulationConfig, simulate
from exp_dagster.spec import load_experiment, load_metric_catalog


def test_init_writes_a_valid_spec_and_catalog(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    catalog = tmp_path / "catalog"
    assert main(["init", "my_test", "--dir", str(catalog), "--start", "2026-11-01"]) == 0
    spec_path = catalog / "experiments" / "my_test.yaml"
    experiment = load_experiment(spec_path, load_metric_catalog(catalog / "metrics.yaml"))
    assert experiment.spec.id == "my_test"
    assert (experiment.spec.start, experiment.spec.end) == (
        dt.date(2026, 11, 1),
        dt.date(2026, 11, 14),
    )
    assert set(load_metric_catalog(catalog / "metrics.yaml").metrics) == {
        "ctr",
        "conversion",
        "revenue",
        "latency_p95",
    }
    err = capsys.readouterr().err
    assert "exp-dagster analyze --experiment" in err and "docs/spec.md" in spec_path.read_text()
    # an existing spec is not overwritten; an existing catalog is kept and used
    before = spec_path.read_text()
    assert main(["init", "my_test", "--dir", str(catalog)]) == 2
    assert "exists already" in capsys.readouterr().err
    assert spec_path.read_text() == before
    (catalog / "metrics.yaml").write_text(
        "metrics:\n  clicks:\n    type: mean\n    event: click\n    direction: increase\n"
    )
    assert main(["init", "other", "--dir", str(catalog)]) == 0
    other = load_experiment(
        catalog / "experiments" / "other.yaml", load_metric_catalog(catalog / "metrics.yaml")
    )
    assert other.spec.metrics.primary == "clicks"
    assert main(["init", "bad id", "--dir", str(catalog)]) == 2
    assert "is not a name" in capsys.readouterr().err


def test_init_then_analyze_reaches_a_decision(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = SimulationConfig(n_units=2000, days=4, pre_days=2, seed=3)
    simulate(tmp_path / "logs", config)
    monkeypatch.chdir(tmp_path)
    start = config.start.isoformat()
    assert main(["init", "ranker_v2", "--start", start, "--days", "4"]) == 0
    code = main(
        [
            "analyze",
            *("--experiment", "catalog/experiments/ranker_v2.yaml"),
            *("--exposures", "logs/exposures", "--events", "logs/events"),
        ]
    )
    assert code == 0
    captured = capsys.readouterr()
    assert "Decision: " in captured.out
    assert (tmp_path / "exp_dagster_reports" / "ranker_v2").is_dir()
