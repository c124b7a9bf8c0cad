"""Importing the code location stays light.

Every Dagster process imports ``exp_dagster.definitions`` before it does anything else: each code
server, and each run (the default run launcher starts a fresh process per run). The libraries only
some asset bodies need (matplotlib for the report's charts, scipy.stats for DeLong's AUC and the
sign test, scipy.optimize for group-sequential boundaries, pandera for the gates) are imported
where they are used, so a run that does not need them never pays for them, and a code server
never does.
"""

from __future__ import annotations

import json
import subprocess
import sys

from exp_dagster.home import PROJECT_ROOT

# Each costs from a quarter to half a second to import on the two-core CI machine.
HEAVY = ("matplotlib", "scipy.stats", "scipy.optimize", "pandera", "sklearn")


def modules_after(statement: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``statement``."""
    script = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return set(json.loads(result.stdout.splitlines()[-1]))


def test_importing_the_code_location_imports_no_heavy_library() -> None:
    loaded = modules_after("import exp_dagster.definitions")
    assert "exp_dagster.definitions" in loaded
    assert "assets.report" in loaded  # the report asset (and its HTML module) was imported
    assert "exp_dagster.report.charts" in loaded
    heavy = sorted(name for name in HEAVY if name in loaded)
    assert not heavy, f"importing exp_dagster.definitions imports {heavy}: import them where used"


def test_drawing_a_chart_imports_matplotlib_where_it_draws() -> None:
    """The lazy imports still work, and the probe above sees a library once it is imported."""
    loaded = modules_after(
        "import datetime as dt\n"
        "from exp_dagster.home import PROJECT_ROOT\n"
        "from exp_dagster.report import charts\n"
        "from exp_dagster.spec import load_experiment, load_metric_catalog\n"
        "catalog = load_metric_catalog(PROJECT_ROOT / 'catalog' / 'metrics.yaml')\n"
        "experiment = load_experiment(\n"
        "    PROJECT_ROOT / 'catalog' / 'experiments' / 'ranker_v2.yaml', catalog\n"
        ")\n"
        "assert 'matplotlib' not in sys.modules\n"
        "split = {v.name: 100 for v in experiment.spec.variants}\n"
        "days = {dt.date(2026, 10, 1): split, dt.date(2026, 10, 2): split}\n"
        "png = charts.traffic_chart(days, experiment.spec)\n"
        "assert png is not None and png.startswith(b'\\x89PNG'), png"
    )
    assert "matplotlib" in loaded


def test_the_cli_help_imports_no_engine_or_analysis_library() -> None:
    """``exp-dagster --help`` (and argument errors) answer at once: dagster, duckdb, pandas,
    numpy and scipy are imported only by the command that needs them."""
    loaded = modules_after(
        "from exp_dagster import cli\ntry:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass"
    )
    assert "exp_dagster.cli" in loaded
    heavy = {"dagster", "duckdb", "pandas", "numpy", "scipy", *HEAVY}
    assert not heavy & loaded, sorted(heavy & loaded)
