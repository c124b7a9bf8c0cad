"""Two ``exp-dagster analyze`` processes on one ``--home``: each reports its own input.

The second waits for the first (the home's run lock, exp_dagster.locks) instead of replacing the
first's partitions mid-run or failing on DuckDB's file lock; a killed run leaves no lock behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from exp_dagster.cli import main
from exp_dagster.locks import LOCK_FILE
from tests.integration.test_analyze import hand_made_logs, write_spec

COMPARED = ("metric", "variant", "n_control", "n_treatment", "mean_control", "mean_treatment")


def inputs(root: Path, units: int) -> list[str]:
    """Logs of the same experiment (a re-export of different size), and analyze's arguments."""
    root.mkdir(parents=True)
    hand_made_logs(root, units=units)
    spec = write_spec(root)
    return [
        "analyze",
        "--experiment",
        str(spec),
        "--exposures",
        str(root / "exposures.csv"),
        "--events",
        str(root / "events.jsonl"),
        "--json",
        str(root / "out.json"),
    ]


def numbers(document: dict[str, Any]) -> list[tuple[Any, ...]]:
    return sorted(tuple(row[k] for k in COMPARED) for row in document["results"])


def alone(arguments: list[str]) -> dict[str, Any]:
    """The document of a run with a home of its own (the reference)."""
    assert main(arguments) == 0
    return json.loads(Path(arguments[-1]).read_text())


def start(arguments: list[str], home: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "exp-dagster"), *arguments, "--home", str(home)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def test_two_runs_on_one_home_each_report_their_own_input(tmp_path: Path) -> None:
    small, large = inputs(tmp_path / "small", 300), inputs(tmp_path / "large", 500)
    expected = {"small": numbers(alone(small)), "large": numbers(alone(large))}
    assert expected["small"] != expected["large"]
    for arguments in (small, large):
        Path(arguments[-1]).unlink()  # the reference runs
    home = tmp_path / "shared-home"
    runs = {"small": start(small, home), "large": start(large, home)}
    outputs = {name: run.communicate(timeout=600) for name, run in runs.items()}
    for name, run in runs.items():
        out, err = outputs[name]
        assert run.returncode == 0, err
        assert "Traceback" not in err and "exp_dagster." not in err, err
        document = json.loads(Path((small if name == "small" else large)[-1]).read_text())
        assert numbers(document) == expected[name], name
        primary = next(r for r in document["results"] if r["role"] == "primary")
        assert f"{primary['n_control']}/{primary['n_treatment']}" in out  # the printed table
    waited = [name for name, (_, err) in outputs.items() if "waiting for another" in err]
    assert len(waited) == 1, outputs  # the runs overlapped, and one waited for the other
    (_, err) = outputs[waited[0]]
    assert f"waiting for another exp-dagster run on {home} (pid " in err


def test_a_killed_run_leaves_no_lock_behind(tmp_path: Path) -> None:
    arguments = inputs(tmp_path / "logs", 300)
    expected = numbers(alone(arguments))
    home = tmp_path / "home"
    run = start(arguments, home)
    deadline = time.monotonic() + 300
    # Kill it mid-run: once it holds the lock and has begun writing the warehouse.
    while not (
        (home / LOCK_FILE).exists()
        and (home / LOCK_FILE).read_text().startswith("pid ")
        and (home / "warehouse.duckdb").exists()
    ):
        assert run.poll() is None and time.monotonic() < deadline, run.communicate()
        time.sleep(0.05)
    run.send_signal(signal.SIGKILL)
    run.wait()
    Path(arguments[-1]).unlink()  # the reference run's
    started = time.monotonic()
    again = start(arguments, home)
    _, err = again.communicate(timeout=600)
    assert again.returncode == 0 and "waiting for another" not in err and "Traceback" not in err
    assert numbers(json.loads(Path(arguments[-1]).read_text())) == expected
    assert time.monotonic() - started < 300


def test_a_run_that_cannot_get_the_home_stops_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import exp_dagster.locks

    arguments = inputs(tmp_path / "logs", 100)
    home = tmp_path / "home"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from exp_dagster.locks import "
            "exclusive_home\nwith exclusive_home(Path(sys.argv[1]), 'exp-dagster demo'):\n"
            "    print('held', flush=True); time.sleep(60)",
            str(home),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        monkeypatch.setattr(exp_dagster.locks, "WAIT_SECONDS", 0.5)
        assert main([*arguments, "--home", str(home)]) == 2
    finally:
        holder.kill()
        holder.wait()
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith(f"waiting for another exp-dagster run on {home} (pid {holder.pid}")
    assert err[-1].startswith(f"error: another exp-dagster run (pid {holder.pid}, exp-dagster demo")
    assert err[-1].endswith(
        "or give this run a home of its own (--home; EXP_DAGSTER_HOME for demo)."
    )
    assert not Path(arguments[-1]).exists()


def test_the_report_command_waits_for_a_run_writing_the_warehouse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    arguments = inputs(tmp_path / "logs", 100)
    home = tmp_path / "home"
    assert main([*arguments, "--home", str(home)]) == 0
    monkeypatch.setenv("EXP_DAGSTER_WAREHOUSE", str(home / "warehouse.duckdb"))
    monkeypatch.setenv("EXP_DAGSTER_CATALOG", str(tmp_path / "logs"))
    monkeypatch.setenv("EXP_DAGSTER_REPORTS", str(tmp_path / "reports"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time, duckdb\nconn = duckdb.connect(sys.argv[1])\n"
            "print('held', flush=True)\ntime.sleep(1.5)\nconn.close()",
            str(home / "warehouse.duckdb"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "held"
        capsys.readouterr()
        assert main(["report", "--experiment", "rerank_test"]) == 0
    finally:
        writer.kill()
        writer.wait()
    out, err = capsys.readouterr()
    assert f"waiting for another process writing {home / 'warehouse.duckdb'}" in err
    assert out.strip().endswith(".html") and Path(out.strip()).exists()
