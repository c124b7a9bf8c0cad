"""`exp-dagster analyze` keeps the report where the user can open it, and `report --home` finds
an experiment analysed with --home (its spec is kept in the home)."""

from __future__ import annotations

from pathlib import Path

import pytest

from exp_dagster.cli import _metrics_file, main
from tests.integration.test_analyze import hand_made_logs, write_spec


def analyze(root: Path, *extra: str) -> int:
    return main(
        [
            "analyze",
            *("--experiment", str(root / "experiments" / "rerank_test.yaml")),
            *("--exposures", str(root / "exposures.csv")),
            *("--events", str(root / "events.jsonl")),
            *extra,
        ]
    )


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    hand_made_logs(tmp_path)
    write_spec(tmp_path)
    return tmp_path


def test_without_a_home_the_report_lands_in_the_working_directory(
    logs: Path,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cwd = tmp_path_factory.mktemp("cwd")
    monkeypatch.chdir(cwd)
    assert analyze(logs) == 0
    # only the analysis day's report is copied out of the temporary home
    reports = list((cwd / "exp_dagster_reports" / "rerank_test").glob("*.html"))
    assert len(reports) == 1
    assert "<html" in reports[0].read_text()[:500].lower()
    assert f"report: exp_dagster_reports/rerank_test/{reports[0].name}" in capsys.readouterr().err


def test_report_dir_and_home_and_report_command(
    logs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chosen = logs / "my_reports"
    assert analyze(logs, "--report-dir", str(chosen)) == 0
    assert len(list((chosen / "rerank_test").glob("*.html"))) == 1

    kept = logs / "home"
    assert analyze(logs, "--home", str(kept)) == 0
    assert (kept / "catalog" / "experiments" / "rerank_test.yaml").is_file()
    assert (kept / "catalog" / "metrics.yaml").is_file()
    # every day's report is kept in the home; the last day's is the one named
    last = max((kept / "reports" / "rerank_test").glob("*.html"))
    assert f"report: {last}" in capsys.readouterr().err
    report = last
    report.unlink()
    # `report` finds the experiment through the home's kept spec, and writes the report again.
    assert main(["report", "--experiment", "rerank_test", "--home", str(kept)]) == 0
    assert str(report) in capsys.readouterr().out
    assert report.is_file()
    assert main(["report", "--experiment", "other", "--home", str(kept)]) == 2
    assert "has no spec" in capsys.readouterr().err
    assert main(["report", "--experiment", "rerank_test", "--home", str(logs / "none")]) == 2
    assert "no warehouse at" in capsys.readouterr().err


def test_metrics_next_to_the_spec_come_first(tmp_path: Path) -> None:
    spec = tmp_path / "catalog" / "experiments" / "x.yaml"
    spec.parent.mkdir(parents=True)
    spec.write_text("id: x\n")
    (tmp_path / "catalog" / "metrics.yaml").write_text("metrics: {}\n")
    assert _metrics_file(spec, None) == tmp_path / "catalog" / "metrics.yaml"
    (spec.parent / "metrics.yaml").write_text("metrics: {}\n")
    assert _metrics_file(spec, None) == spec.parent / "metrics.yaml"
    assert _metrics_file(spec, "elsewhere.yaml") == Path("elsewhere.yaml")
