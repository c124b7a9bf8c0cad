"""Run the scale benchmark: ``python -m benchmarks.run --units 1000000 --repeat 3``.

Generates (once, cached) the workload of ``benchmarks/workload.py``, then runs every contender of
``benchmarks/contenders.py`` (and tea-tasting, from its own virtualenv) in its own process,
interleaved round-robin so that a noisy minute hurts every contender alike, ``--repeat`` times.
Prints each contender's median wall time and peak RSS and the ratios to the bare scan and to
tea-tasting, then the add-a-day ratio; writes the raw measurements as JSON (``--json``).

Wall times are whole processes (Python start and imports included: a user pays them too).
Ratios are measured in one run on one machine; absolute seconds are not comparable across
machines. DuckDB settings come from EXP_DAGSTER_DUCKDB_THREADS / _MEMORY_LIMIT / _TEMP_DIR.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.workload import workload

ROOT = Path(__file__).resolve().parents[1]
TEA_VENV = Path(os.environ.get("EXP_DAGSTER_TEA_VENV", ROOT / "benchmarks" / ".venv-tea"))
# Tested together with duckdb 2.0 (the range is what docs/scale.md's figures were measured with).
TEA_REQUIREMENTS = ["tea-tasting>=1.14,<2", "ibis-framework[duckdb]>=10,<12"]


def tea_python() -> Path | None:
    """tea-tasting's interpreter, installing it into its own virtualenv on first use."""
    python = TEA_VENV / "bin" / "python"
    if not python.exists():
        print(f"installing tea-tasting into {TEA_VENV} (once) …", file=sys.stderr)
        try:
            subprocess.run([sys.executable, "-m", "venv", str(TEA_VENV)], check=True)
            subprocess.run(
                [str(python), "-m", "pip", "install", "--quiet", *TEA_REQUIREMENTS], check=True
            )
        except subprocess.CalledProcessError as exc:
            print(f"tea-tasting could not be installed ({exc}); skipping it", file=sys.stderr)
            return None
    return python


def run_one(name: str, units: int, tea: Path | None) -> dict[str, object]:
    if name == "tea_tasting":
        assert tea is not None
        script = ROOT / "benchmarks" / "tea_contender.py"
        command = [str(tea), str(script), str(workload(units).root)]
    else:
        command = [sys.executable, "-m", "benchmarks.contenders", name, str(units)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{name} failed:\n{done.stderr[-3000:]}")
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    print(
        f"  {name:<20} {result['seconds']:8.1f} s  {result['peak_rss_mb']:8.0f} MB",
        file=sys.stderr,
        flush=True,
    )
    return result


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(float(r[key]) for r in runs)


def _step_medians(runs: list[dict[str, Any]], key: str) -> dict[str, float]:
    """Each step's median seconds over runs (a step missing from a run counts as 0 s there)."""
    steps = {step for r in runs for step in r["outcome"].get(key, {})}
    return {
        step: statistics.median(float(r["outcome"].get(key, {}).get(step, 0.0)) for r in runs)
        for step in steps
    }


def summary(
    units: int,
    repeat: int,
    runs: dict[str, list[dict[str, Any]]],
    add_day: list[dict[str, Any]],
) -> list[str]:
    """The report's lines: medians and ratios per contender, Dagster's overhead (in total and
    per step: a step's median through Dagster against the same asset body's median without
    it), and the add-a-day ratio."""
    lines = [
        f"{units:,} units, medians of {repeat} (wall time of the whole process)",
        f"{'contender':<20} {'seconds':>9} {'peak RSS MB':>12} {'× scan':>8} {'× tea':>8}",
    ]
    for name, results in runs.items():
        seconds = _median(results, "seconds")
        scan = f"{seconds / _median(runs['scan'], 'seconds'):.2f}" if "scan" in runs else "–"
        tea = (
            f"{seconds / _median(runs['tea_tasting'], 'seconds'):.2f}"
            if "tea_tasting" in runs
            else "–"
        )
        rss = _median(results, "peak_rss_mb")
        lines.append(f"{name:<20} {seconds:9.1f} {rss:12.0f} {scan:>8} {tea:>8}")
    if "exp_dagster" in runs and "exp_dagster_direct" in runs:
        through = _median(runs["exp_dagster"], "seconds")
        direct = _median(runs["exp_dagster_direct"], "seconds")
        lines.append(
            f"Dagster overhead (through Dagster ÷ the asset bodies without it): "
            f"{through / direct:.2f}× ({through - direct:+.1f} s)"
        )
        with_dagster = _step_medians(runs["exp_dagster"], "seconds_by_step")
        without = _step_medians(runs["exp_dagster_direct"], "seconds_by_asset")
        inside = sum(with_dagster.values()) - sum(without.get(s, 0.0) for s in with_dagster)
        lines.append(
            f"  of which inside the steps {inside:+.1f} s, outside them (runs) "
            f"{through - direct - inside:+.1f} s; per step, seconds through Dagster / without:"
        )
        for step, seconds in sorted(with_dagster.items(), key=lambda item: -item[1]):
            bare = without.get(step)
            bare_text = f"{bare:8.1f}" if bare is not None else f"{'–':>8}"
            lines.append(f"  {step:<24} {seconds:8.1f} {bare_text}")
    for result in add_day:
        outcome = result["outcome"]
        added, full = outcome["add_day_seconds"], outcome["full_seconds"]
        lines.append(
            f"adding day 15: {added:.1f} s against {full:.1f} s for all 15 days from scratch "
            f"= {added / full:.3f}× (same results: {outcome['identical']})"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--units", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--contenders",
        default="scan,exp_dagster,exp_dagster_direct,tea_tasting,pandas",
        help="comma-separated; add_day is run after them unless --no-add-day",
    )
    parser.add_argument("--no-add-day", action="store_true")
    parser.add_argument("--json", type=Path, help="write every measurement here")
    args = parser.parse_args(argv)

    workload(args.units)  # generate before timing anything
    names = [n for n in args.contenders.split(",") if n]
    tea = tea_python() if "tea_tasting" in names else None
    if "tea_tasting" in names and tea is None:
        names.remove("tea_tasting")
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for repetition in range(args.repeat):
        print(f"repetition {repetition + 1}/{args.repeat}", file=sys.stderr)
        order = names[repetition % len(names) :] + names[: repetition % len(names)]
        for name in order:
            runs[name].append(run_one(name, args.units, tea))
    add_day = [] if args.no_add_day else [run_one("add_day", args.units, None)]

    print("\n" + "\n".join(summary(args.units, args.repeat, runs, add_day)))
    if args.json:
        args.json.write_text(json.dumps({"runs": runs, "add_day": add_day}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
