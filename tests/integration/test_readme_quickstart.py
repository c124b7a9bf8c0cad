"""The README's quickstart ("your own logs") runs as written: its commands are read from the README
itself, their placeholders filled the way a user would (an experiment id, the paths of the logs,
the dates edited in the spec as step 1 says to), and run in a fresh folder through the
``.venv/bin/exp-dagster`` the README names. A README edit that breaks a command fails here."""

from __future__ import annotations

import datetime as dt
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

from exp_dagster.home import PROJECT_ROOT
from exp_dagster.simulate import SimulationConfig, simulate

README = PROJECT_ROOT / "README.md"
CONFIG = SimulationConfig(n_units=2000, days=4, pre_days=2, seed=5)
EXPERIMENT = "ranker_v2"  # the simulator's experiment_id


def quickstart() -> str:
    text = README.read_text()
    match = re.search(r"^## Quickstart: your own logs\n(.*?)(?=^## )", text, re.S | re.M)
    assert match, "README.md has no '## Quickstart: your own logs' section"
    return match.group(1)


def commands(section: str) -> list[str]:
    """The section's ``exp-dagster`` commands: inline code and the bash block, continuations
    joined, comments dropped."""
    inline = re.findall(r"`(\.venv/bin/exp-dagster [^`]+)`", section)
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    assert blocks, "the quickstart has no ```bash block"
    lines = [line.split("#")[0].strip() for line in blocks[0].replace("\\\n", " ").splitlines()]
    return inline + [line for line in lines if line]


def fill(command: str, logs: Path) -> list[str]:
    command = command.replace("<id>", EXPERIMENT)
    command = command.replace("path/to/exposures", str(logs / "exposures"))
    command = command.replace("path/to/events", str(logs / "events"))
    command = re.sub(r"\[(--[^\]]+)\]", r"\1", command)  # an optional flag, taken
    return shlex.split(command)


def test_the_readme_quickstart_runs_as_written(tmp_path: Path) -> None:
    section = quickstart()
    found = commands(section)
    # `make demo` sets up .venv (it is the README's first promise, tested by CI itself); the
    # rest are the user's own commands.
    assert found[0].startswith(".venv/bin/exp-dagster init <id>"), found
    assert "make demo" in found, found
    steps = [c for c in found if c != "make demo"]
    assert [c.split()[1] for c in steps] == ["init", "analyze"], steps

    logs = tmp_path / "logs"
    simulate(logs, CONFIG)
    work = tmp_path / "project"
    work.mkdir()
    (work / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)

    def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, cwd=work, capture_output=True, text=True, timeout=600)

    init = run(fill(steps[0], logs))
    assert init.returncode == 0, init.stderr
    spec = work / "catalog" / "experiments" / f"{EXPERIMENT}.yaml"
    assert spec.exists(), init.stderr
    # Step 1: "writes a commented spec … to edit": the user sets the dates of their test.
    end = CONFIG.start + dt.timedelta(days=CONFIG.days - 1)
    edited = spec.read_text()
    for field, day in (("start", CONFIG.start), ("end", end)):
        line = f"{field}: {day.isoformat()}"
        edited = re.sub(rf"^{field}: .*$", line, edited, count=1, flags=re.M)
    spec.write_text(edited)

    analyze = run(fill(steps[1], logs))
    assert analyze.returncode == 0, analyze.stderr[-3000:]
    assert "Decision: " in analyze.stdout
    # The report path the README promises, printed and on disk.
    reports = list((work / "exp_dagster_reports" / EXPERIMENT).glob("*.html"))
    assert len(reports) == 1, analyze.stderr[-2000:]
    assert f"exp_dagster_reports/{EXPERIMENT}/" in analyze.stdout + analyze.stderr
    document = json.loads((work / "out.json").read_text())
    assert document["experiment"] == EXPERIMENT
    assert document["decision"] in {"SHIP", "ROLLBACK", "KEEP_RUNNING", "INCONCLUSIVE", "INVALID"}
    assert document["decision"] in analyze.stdout and document["results"]
