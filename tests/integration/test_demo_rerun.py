"""A second `exp-dagster demo` on unchanged logs, specs and code shows the same results without
materialising anything again; a changed log file runs the pipeline again."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from exp_dagster.cli import main


def test_a_second_demo_reuses_the_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("EXP_DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    for name in ("EXP_DAGSTER_WAREHOUSE", "EXP_DAGSTER_REPORTS", "EXP_DAGSTER_EXPOSURES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("EXP_DAGSTER_EVENTS", raising=False)
    demo = ["demo", "--units", "1500", "--days", "3", "--pre-days", "1"]

    assert main(demo) == 0
    first = capsys.readouterr()
    assert "exposures → … → decision" in first.err
    decision = next(line for line in first.out.splitlines() if line.startswith("Decision:"))

    started = time.perf_counter()
    assert main(demo) == 0
    elapsed = time.perf_counter() - started
    second = capsys.readouterr()
    assert "Nothing changed since the last demo" in second.err
    assert "exposures → … → decision" not in second.err
    assert decision in second.out.splitlines()
    assert elapsed < 20

    # A log file changed since (here: touched): the demo runs the pipeline again.
    landing = tmp_path / "home" / "landing"
    a_file = next(p for p in sorted((landing / "events").rglob("*")) if p.is_file())
    os.utime(a_file, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert main(demo) == 0
    assert "exposures → … → decision" in capsys.readouterr().err
