"""``exp-dagster``: simulate logs, run the demo, analyse your own logs without the UI.

    exp-dagster init ID [--dir catalog] [--start YYYY-MM-DD] [--days N]
    exp-dagster simulate --out DIR [--units N] [--seed S] [--format parquet|csv|jsonl]
    exp-dagster demo [--units N] [--fresh]
    exp-dagster analyze --experiment SPEC.yaml --exposures PATH --events PATH
                        [--as-of YYYY-MM-DD] [--metrics metrics.yaml] [--json OUT] [--home DIR]
                        [--report-dir DIR] [--ranking PATH] [--predictions PATH]
                        [--interleaving PATH]
    exp-dagster backfill --experiment ID --from YYYY-MM-DD --to YYYY-MM-DD [--wait]
    exp-dagster report --experiment ID [--as-of YYYY-MM-DD] [--home DIR] [--open]

Errors in the input (a spec field, a missing column, an unreadable file) or in the setup (an
``EXP_DAGSTER_*`` setting, a path that cannot be written, a full disk, DuckDB's memory limit) are
printed as one sentence naming the file or variable and what to do, with exit status 2; a failed
run exits with 1. What the data puts in a message (ids, event and file names) is printed with its
control characters escaped. Set ``EXP_DAGSTER_VERBOSE=1`` to see Dagster's own event log while
the runs execute (and the traceback of an unexpected error).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import errno
import json
import math
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exp_dagster import home
from exp_dagster.home import SettingError
from exp_dagster.spec import ResolvedExperiment, SpecError
from exp_dagster.text import printable

DEMO_EXPERIMENT = "ranker_v2"
# exp_dagster.showcase.SHOWCASE's experiments (named here so that the parser imports no numpy)
SHOWCASE_EXPERIMENTS = ("ramp_demo", "holdout_demo", "oec_demo", "did_demo", "bandit_demo")


class UsageError(ValueError):
    """A command-line option cannot work (a folder that is a file, an output that cannot be
    written); the message names the option and what to pass instead."""


def _say(message: str) -> None:
    print(printable(message, keep_newlines=True), file=sys.stderr, flush=True)


def _show(text: str = "") -> None:
    """Print results on stdout, with what the data put in them made safe for a terminal."""
    print(printable(text, keep_newlines=True))


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date; use YYYY-MM-DD") from exc


# ── simulate ─────────────────────────────────────────────────────────────────────────────────


def _simulation_config(args: argparse.Namespace, experiment_id: str = DEMO_EXPERIMENT) -> Any:
    """The demo's simulation (a showcase experiment's, exp_dagster.showcase), with the command
    line's overrides."""
    import dataclasses

    from exp_dagster.showcase import SHOWCASE
    from exp_dagster.simulate import SimulationConfig

    overrides: dict[str, Any] = {}
    for field in ("units", "seed", "days", "pre_days"):
        value = getattr(args, field, None)
        if value is not None:
            overrides["n_units" if field == "units" else field] = value
    if getattr(args, "format", None):
        overrides["fmt"] = args.format
    if experiment_id in SHOWCASE:
        return dataclasses.replace(SHOWCASE[experiment_id], **overrides)
    return SimulationConfig(**overrides)


def cmd_simulate(args: argparse.Namespace) -> int:
    from exp_dagster.simulate import simulate

    truth = simulate(Path(args.out), _simulation_config(args), progress=_say)
    _say(f"wrote {args.out}: " + ", ".join(f"{k} {v:,}" for k, v in truth.counts.items()))
    return 0


# ── results as JSON and text ─────────────────────────────────────────────────────────────────


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def result_document(
    experiment_id: str,
    as_of: dt.date,
    spec_version: str,
    decision: dict[str, Any],
    rows: Sequence[dict[str, Any]],
    evaluation: Sequence[dict[str, Any]] = (),
    parity: Sequence[dict[str, Any]] = (),
    day: AnalysisDay | None = None,
    did_effects: Sequence[dict[str, Any]] | None = None,
    bandit_allocations: Sequence[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The ``--json`` document (its schema is documented in docs/cli.md). ``did_effects`` (a
    spec with a ``did`` block) and ``bandit_allocations`` (with a ``bandit``) are keys of the
    document only when given."""
    drop = {"experiment_id", "as_of_date", "spec_version"}

    def clean_row(row: dict[str, Any]) -> dict[str, Any]:
        return {k: _clean(v) for k, v in row.items() if k not in drop}

    designs: dict[str, Any] = {}
    if did_effects is not None:
        designs["did_effects"] = [clean_row(r) for r in did_effects]
    if bandit_allocations is not None:
        # as_of_date is kept: the day whose statistics set the split (applies_to: the next day)
        designs["bandit_allocations"] = [
            {k: _clean(v) for k, v in r.items() if k not in {"experiment_id", "spec_version"}}
            for r in bandit_allocations
        ]
    return {
        "experiment": experiment_id,
        "as_of": as_of.isoformat(),
        "as_of_basis": day.basis if day else None,
        "missing_days": [d.isoformat() for d in day.missing] if day else [],
        "spec_version": spec_version,
        "srm_p_value": _clean(decision.get("srm_p_value")),
        "decision": decision.get("decision"),
        "variant": decision.get("variant"),
        "ramp_action": decision.get("ramp_action"),
        "reasons": list(decision.get("reasons") or []),
        "results": [clean_row(r) for r in rows if r["segment"] == "all"],
        "segment_results": [clean_row(r) for r in rows if r["segment"] != "all"],
        "model_evaluation": {
            "parity": [clean_row(r) for r in parity],
            "offline": [clean_row(r) for r in evaluation],
        },
        **designs,
    }


def _read_outcome(
    database: Path, experiment_id: str, day: dt.date
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    from exp_dagster.locks import read_only_connection
    from exp_dagster.warehouse.partitions import read_partition

    with read_only_connection(database, say=_say) as conn:
        rows = read_partition(conn, "results", experiment_id, day)
        decisions = read_partition(conn, "decision", experiment_id, day)
    return rows, decisions[0] if decisions else {}


def _read_design_rows(
    database: Path, spec: Any, day: dt.date
) -> tuple[list[dict[str, Any]] | None, list[dict[str, Any]] | None]:
    """The day's ``did_effects`` rows (None without a ``did`` block) and the latest
    ``bandit_allocations`` split set on or before the day (None without a ``bandit``; on the
    last day, which allocates no next day, the split set the day before)."""
    from exp_dagster.locks import read_only_connection
    from exp_dagster.warehouse.partitions import read_partition
    from exp_dagster.warehouse.statements import fetch_dicts

    did = bandit = None
    with read_only_connection(database, say=_say) as conn:
        if spec.did is not None:
            did = read_partition(conn, "did_effects", spec.id, day)
        if spec.bandit is not None:
            bandit = fetch_dicts(
                conn,
                "SELECT * FROM bandit_allocations WHERE experiment_id = ? AND as_of_date = ("
                "SELECT max(as_of_date) FROM bandit_allocations WHERE experiment_id = ? "
                "AND as_of_date <= ?) ORDER BY variant",
                [spec.id, spec.id, day],
            )
    return did, bandit


def _read_quality(database: Path, experiment: Any, day: dt.date) -> Any:
    """Rows validated and quarantined through ``day`` (a :class:`DataQuality`)."""
    from exp_dagster.locks import read_only_connection
    from exp_dagster.report.data import read_data_quality

    with read_only_connection(database, say=_say) as conn:
        return read_data_quality(conn, experiment, day)


def _print_quarantine(quality: Any, shown: int = 5) -> None:
    """The quarantined input rows by reason, so that none is set aside unseen (a file delivered
    twice, rows outside their folder's day)."""
    if quality is None:
        return
    for kind, validated, reasons in (
        ("exposure", quality.exposure_rows, quality.exposure_quarantine),
        ("event", quality.event_rows, quality.event_quarantine),
    ):
        if not reasons:
            continue
        total = sum(reasons.values())
        _show(
            f"\nQuarantined {kind} rows: {total:,} of {total + validated:,}, by reason (each row, "
            f"with its file and record, is in the warehouse's {kind}_quarantine; --home keeps it):"
        )
        for reason, count in list(reasons.items())[:shown]:
            _show(f"  {count:>9,}  {printable(reason)}")  # a reason quotes the logs' values
        if len(reasons) > shown:
            _show(f"  … and {len(reasons) - shown} more reason(s)")


def _read_model_evaluation(
    database: Path, experiment_id: str, day: dt.date
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The day's ``offline_evaluation`` and ``offline_online_parity`` rows."""
    from exp_dagster.locks import read_only_connection
    from exp_dagster.warehouse.evaluation import read_rows

    with read_only_connection(database, say=_say) as conn:
        return (
            read_rows(conn, "offline_evaluation", experiment_id, day),
            read_rows(conn, "offline_online_parity", experiment_id, day),
        )


def _print_model_evaluation(
    evaluation: Sequence[dict[str, Any]],
    parity: Sequence[dict[str, Any]],
    truth: dict[str, float] | None = None,
    *,
    alpha: float,
) -> None:
    """Offline, counterfactual and interleaving results next to the online A/B lift, whose
    intervals are all at the spec's two-sided level ``alpha``."""
    if not parity and not evaluation:
        return
    _show(f"\nModel evaluation beside the A/B test (relative lifts, {1 - alpha:.0%} CIs):")
    for row in parity:
        if row["lift"] is None:
            continue
        scale, unit = (1.0, "") if row["evidence"] == "interleaving" else (100.0, "%")
        _show(
            f"  {row['variant']:<10} {row['evidence']:<16} {row['metric']:<42} "
            f"{row['lift'] * scale:+7.2f}{unit} [{row['ci_low'] * scale:+7.2f}{unit}, "
            f"{row['ci_high'] * scale:+7.2f}{unit}]"
        )
    wanted = {"off_policy", "classifier", "classifier_comparison", "drift"}
    shown = [
        r
        for r in evaluation
        if r["kind"] in wanted and r["value"] is not None and r.get("segment", "all") == "all"
    ]
    if shown:
        _show("\nOffline estimates (absolute values):")
    for row in shown:
        ci = (
            f"[{row['ci_low']:.4f}, {row['ci_high']:.4f}]"
            if row["ci_low"] is not None and math.isfinite(row["ci_low"])
            else f"({row['detail']})"
        )
        label = row["metric"]
        if row["kind"] == "classifier_comparison":
            label = f"{label} minus control's (paired DeLong)"
        _show(f"  {row['model']:<10} {label:<42} {row['value']:8.4f} {ci}")
    if truth:
        _show("\nKnown truth of the simulated model logs:")
        for key, value in truth.items():
            _show(f"  {key:<42} {value:8.4f}")


def _print_outcome(
    experiment_id: str,
    day: dt.date,
    rows: Sequence[dict[str, Any]],
    decision: dict[str, Any],
    notes: Sequence[str] = (),
) -> None:
    from exp_dagster.report import results_text

    _show(f"\n{experiment_id} as of {day}")
    for note in notes:
        _show(note)
    _show("")
    _show(results_text(rows))
    verdict = decision.get("decision", "?")
    if decision.get("variant"):
        verdict += f" {decision['variant']}"
    if decision.get("ramp_action"):
        verdict += f" (ramp: {decision['ramp_action']})"
    _show(f"\nDecision: {verdict}")
    for reason in decision.get("reasons") or []:
        _show(f"  • {reason}")


# ── running the pipeline ─────────────────────────────────────────────────────────────────────


def _run(
    resources: dict[str, Any],
    instance: Any,
    experiment_id: str,
    through: dt.date,
) -> Any:
    from exp_dagster.definitions import build_definitions
    from exp_dagster.runner import materialize, plan

    defs = build_definitions(resources)
    experiment = resources["catalog"].experiment(experiment_id)
    the_plan = plan(experiment, resources["landing"].events(), through)
    log_level = "DEBUG" if os.environ.get("EXP_DAGSTER_VERBOSE") else "CRITICAL"
    materialize(defs, instance, experiment, the_plan, progress=_say, log_level=log_level)
    return experiment


def gate_failure_decision(
    failure: Any, experiment: ResolvedExperiment | None = None, day: dt.date | None = None
) -> dict[str, Any]:
    """The decision when a blocking gate stopped the pipeline: INVALID, with the gates' words;
    with the spec and day, a ramp in progress is held (its ``ramp_action``)."""
    from exp_dagster.decision import Decision, Verdict, with_ramp_action

    verdict = Decision(
        Verdict.INVALID,
        None,
        (
            *failure.failures,
            "Nothing downstream of a failed gate was computed, so no effect is reported; "
            "fix or quarantine the data the gate names and run the analysis again.",
        ),
        None,
    )
    if experiment is not None and day is not None:
        verdict = with_ramp_action(experiment, day, [], verdict)
    return {
        "decision": verdict.decision.value,
        "variant": None,
        "srm_p_value": None,
        "ramp_action": verdict.ramp_action and verdict.ramp_action.value,
        "reasons": list(verdict.reasons),
    }


def cmd_demo(args: argparse.Namespace) -> int:
    from exp_dagster.showcase import SHOWCASE

    chosen = getattr(args, "experiment", None) or DEMO_EXPERIMENT
    experiments = [DEMO_EXPERIMENT, *SHOWCASE] if getattr(args, "all", False) else [chosen]
    code = 0
    for experiment_id in experiments:
        if experiment_id == DEMO_EXPERIMENT:
            code = _demo_in_home(args, experiment_id) or code
            continue
        with _showcase_home(experiment_id):
            code = _demo_in_home(args, experiment_id) or code
    return code


@contextlib.contextmanager
def _showcase_home(experiment_id: str) -> Iterator[None]:
    """A showcase experiment runs in its own home, ``<home>/showcase/<id>`` (its logs, warehouse,
    reports and Dagster instance), so the demo's own stay as they are."""
    outer = home.home_dir()
    saved = {name: os.environ.get(name) for name in ("EXP_DAGSTER_HOME", "DAGSTER_HOME")}
    showcase = outer / "showcase" / experiment_id
    showcase.mkdir(parents=True, exist_ok=True)
    os.environ["EXP_DAGSTER_HOME"] = str(showcase)
    if saved["DAGSTER_HOME"] == str(outer / "dagster"):  # the demo's own: not the showcase's
        del os.environ["DAGSTER_HOME"]
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _demo_in_home(args: argparse.Namespace, experiment_id: str) -> int:
    from exp_dagster.locks import LOCK_FILE, exclusive_home

    # Two demos on one home would simulate into, and materialise, the same folder at once.
    with exclusive_home(home.home_dir(), "exp-dagster demo", say=_say):
        if args.fresh:
            for child in home.home_dir().iterdir():
                if child.name == LOCK_FILE:  # held: see exp_dagster.locks
                    continue
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
        return _demo(args, experiment_id)


def _demo(args: argparse.Namespace, experiment_id: str = DEMO_EXPERIMENT) -> int:
    home.ensure_dagster_home()
    import dagster as dg

    from exp_dagster.resources import default_resources
    from exp_dagster.showcase import simulate_showcase
    from exp_dagster.simulate import load_truth

    landing = home.landing_dir()
    truth_file = landing / "truth.json"
    if truth_file.exists():
        _say(f"Using the simulated logs in {landing} (make demo-clean, or --fresh, to start over).")
    else:
        what = "a ranker A/B test" if experiment_id == DEMO_EXPERIMENT else experiment_id
        _say(f"Simulating {what} into {landing} …")
        simulate_showcase(landing, _simulation_config(args, experiment_id), progress=_say)
    truth = load_truth(truth_file)
    resources = default_resources()
    fingerprint = _demo_fingerprint(resources, landing, experiment_id)
    stamp = home.home_dir() / DEMO_STAMP
    experiment = resources["catalog"].experiment(experiment_id)  # type: ignore[attr-defined]
    day = min(truth.end, experiment.spec.end)
    if _demo_is_current(stamp, fingerprint, day, experiment_id):
        _say(
            "Nothing changed since the last demo (logs, specs and code alike): showing its "
            "results. --fresh runs everything again."
        )
    else:
        stamp.unlink(missing_ok=True)
        with dg.DagsterInstance.get() as instance:
            experiment = _run(resources, instance, experiment_id, truth.end)
        stamp.write_text(json.dumps({"fingerprint": fingerprint, "day": day.isoformat()}))
    rows, decision = _read_outcome(home.warehouse_path(), experiment_id, day)
    _print_outcome(experiment_id, day, rows, decision)
    _print_model_evaluation(
        *_read_model_evaluation(home.warehouse_path(), experiment_id, day),
        truth.model_evaluation,
        alpha=experiment.spec.alpha,
    )
    _print_timeline(home.warehouse_path(), experiment_id)
    level = f"{1 - experiment.spec.alpha:.0%}"
    # A rollout's variant rows are confounded (not randomised): its truth is the DiD's estimand.
    confounded = experiment.spec.did is not None
    if truth.relative_effects and not confounded:
        _show(f"\nKnown truth of the simulation (relative effects) against the {level} CIs:")
    overall = {r["metric"]: r for r in rows if r["segment"] == "all"}
    for metric, effect in sorted(truth.relative_effects.items()):
        if confounded:
            break
        row = overall.get(metric)
        if row is None:
            continue
        inside = row["rel_ci_low"] <= effect <= row["rel_ci_high"]
        _show(
            f"  {metric:<12} true {effect * 100:+6.2f}%   CI [{row['rel_ci_low'] * 100:+6.2f}%, "
            f"{row['rel_ci_high'] * 100:+6.2f}%]   {'inside' if inside else 'OUTSIDE'}"
        )
    _print_strata_truth(experiment.spec.metrics.primary, rows, truth.segment_relative_effects)
    estimands = {k: v for k, v in truth.estimands.items() if not k.startswith("bandit_split:")}
    if estimands:
        _show("\nKnown truth of the showcase's estimands (truth.json; the report has their rows):")
        for name, value in sorted(estimands.items()):
            _show(f"  {name:<28} {value:+.4f}")
    from exp_dagster.report.data import report_path

    report = report_path(home.reports_dir(home.warehouse_path()), experiment_id, day)
    ui = (
        "make ui"
        if experiment_id == DEMO_EXPERIMENT
        else f"EXP_DAGSTER_HOME={home.home_dir()} make ui"
    )
    _show(
        f"\nReport: {report}\n"
        f"Warehouse: {home.warehouse_path()}\n"
        f"See the same materialised assets, checks and metadata in the Dagster UI: {ui} "
        f"(then open http://127.0.0.1:3000)."
    )
    return 0


# Written after a demo run completes: what it was computed from (see _demo_fingerprint).
DEMO_STAMP = "demo_stamp.json"


def _print_strata_truth(
    metric: str, rows: Sequence[dict[str, Any]], truth: dict[str, dict[str, float]]
) -> None:
    """A showcase's truths of the primary metric per ramp phase or since each launch, against
    the rows of those strata."""
    from exp_dagster.spec import LAUNCH_PERIOD_SEGMENT, RAMP_PHASE_SEGMENT

    by_cell = {
        f"{r['segment']}={r['segment_value']}": r
        for r in rows
        if r["metric"] == metric and r["segment"] in (RAMP_PHASE_SEGMENT, LAUNCH_PERIOD_SEGMENT)
    }
    for label, effect in sorted(truth.get(metric, {}).items()):
        row = by_cell.get(label)
        if row is None or row.get("rel_ci_low") is None:
            continue
        inside = row["rel_ci_low"] <= effect <= row["rel_ci_high"]
        _show(
            f"  {metric} {label}: true {effect * 100:+6.2f}%   CI "
            f"[{row['rel_ci_low'] * 100:+6.2f}%, {row['rel_ci_high'] * 100:+6.2f}%]   "
            f"{'inside' if inside else 'OUTSIDE'}"
        )


def _demo_fingerprint(
    resources: dict[str, Any], landing: Path, experiment_id: str = DEMO_EXPERIMENT
) -> str:
    """A digest of everything the demo's tables depend on: every landing file (path, size,
    modification time), the experiment and metric specs (their version), and the code
    (exp_dagster's and the assets' Python and SQL files). Equal digests: the same results."""
    import hashlib

    from exp_dagster.home import PROJECT_ROOT

    digest = hashlib.sha256()
    experiment = resources["catalog"].experiment(experiment_id)
    digest.update(experiment.version.encode())
    for path in sorted(p for p in landing.rglob("*") if p.is_file()):
        info = path.stat()
        digest.update(f"{path.relative_to(landing)}|{info.st_size}|{info.st_mtime_ns}\n".encode())
    for package in ("exp_dagster", "assets"):
        for path in sorted((PROJECT_ROOT / package).rglob("*")):
            if path.suffix in (".py", ".sql") and path.is_file():
                digest.update(path.relative_to(PROJECT_ROOT).as_posix().encode())
                digest.update(path.read_bytes())
    for setting in ("EXP_DAGSTER_FIRST_DATE", "EXP_DAGSTER_CATALOG"):
        digest.update(f"{setting}={os.environ.get(setting, '')}\n".encode())
    return digest.hexdigest()


def _demo_is_current(
    stamp: Path, fingerprint: str, day: dt.date, experiment_id: str = DEMO_EXPERIMENT
) -> bool:
    """Whether the last demo run finished on the same inputs and its decision is still in the
    warehouse (a warehouse deleted or replaced since does not count)."""
    from exp_dagster.locks import read_only_connection

    try:
        recorded = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return False
    if recorded.get("fingerprint") != fingerprint or recorded.get("day") != day.isoformat():
        return False
    database = home.warehouse_path()
    if not database.exists():
        return False
    try:
        with read_only_connection(database, say=_say) as conn:
            row = conn.execute(
                "SELECT count(*) FROM decision WHERE experiment_id = ? AND as_of_date = ?",
                [experiment_id, day],
            ).fetchone()
    except Exception:  # an unreadable or older warehouse: run the demo again
        return False
    return bool(row and row[0])


def _print_timeline(database: Path, experiment_id: str) -> None:
    """One line per day: the verdict, and the primary metric's z against its boundary."""
    from exp_dagster.locks import read_only_connection

    with read_only_connection(database, say=_say) as conn:
        rows = conn.execute(
            "SELECT d.as_of_date, d.decision, abs(r.abs_effect) / r.std_error, "
            "r.sequential_boundary, r.power, d.variant, r.variant FROM decision AS d "
            "LEFT JOIN results AS r ON r.experiment_id = d.experiment_id "
            "AND r.as_of_date = d.as_of_date AND r.role = 'primary' AND r.segment = 'all' "
            "WHERE d.experiment_id = ? ORDER BY d.as_of_date, r.variant",
            [experiment_id],
        ).fetchall()
    # One line a day: with several treatments, the primary row of the variant the decision
    # names, else the one with the largest |z|.
    by_day: dict[Any, list[tuple[Any, ...]]] = {}
    for row in rows:
        by_day.setdefault(row[0], []).append(row)

    def rank(row: tuple[Any, ...]) -> tuple[bool, float]:
        named = row[5] is not None and row[6] == row[5]
        return named, row[2] if row[2] is not None else -math.inf

    days = [max(lines, key=rank)[:5] for _, lines in sorted(by_day.items())]
    _show("\nDecision by day (primary metric |z| against its sequential boundary, and power):")
    for day, verdict, z, boundary, power in days:
        evidence = (
            f"|z| {z:5.2f}  boundary {boundary:5.2f}  power {power * 100:3.0f}%"
            if z is not None and boundary is not None and power is not None
            else ""
        )
        _show(f"  {day}  {verdict:<12}  {evidence}")


@dataclass(frozen=True)
class AnalysisDay:
    """The day an analysis is as of, why, and the days of the window the logs do not cover yet.

    Attributes:
        as_of: the analysis date.
        basis: one sentence saying where ``as_of`` comes from (printed and in the JSON).
        missing: the days after the last day with valid rows, through the end date, in order.
    """

    as_of: dt.date
    basis: str
    missing: tuple[dt.date, ...]

    def notes(self) -> list[str]:
        """The lines printed under the title: the basis and, if any, the missing days."""
        lines = [self.basis]
        if self.missing:
            span = (
                f"{self.missing[0]}"
                if len(self.missing) == 1
                else f"{self.missing[0]} to {self.missing[-1]}"
            )
            lines.append(
                f"Missing: {span} ({len(self.missing)} day(s) of the window) have no valid "
                f"exposure or event rows yet; they are not analysed."
            )
        return lines


def analysis_day(
    start: dt.date, end: dt.date, requested: dt.date | None, covered: dt.date | None
) -> AnalysisDay:
    """The analysis date: ``requested`` (default the end date) capped by the end date and by
    ``covered``, the last day of the window with valid rows, so no day is analysed as empty.

    Args:
        start: the experiment's first day.
        end: the experiment's end date.
        requested: the ``--as-of`` given, if any.
        covered: the last day of ``start .. end`` with a valid exposure or event row, or None.
    """
    wanted = min(requested or end, end)
    last = covered if covered is not None else start
    missing = tuple(last + dt.timedelta(days=i + 1) for i in range((end - last).days))
    if covered is None:
        return AnalysisDay(
            start,
            f"As of {start}, the first day: the logs have no valid exposure or event row in the "
            f"window {start} to {end}, so it is analysed as a day without traffic.",
            missing,
        )
    if wanted <= covered:
        if requested is None:
            basis = f"As of {wanted}, the experiment's end date."
        elif requested > end:
            basis = f"As of {wanted}, the end date (--as-of {requested} is after it)."
        else:
            basis = f"As of {wanted}, as requested with --as-of."
        return AnalysisDay(wanted, basis, missing)
    if requested is None:
        basis = (
            f"As of {covered}, the last day with valid exposure or event rows (the experiment "
            f"runs to {end})."
        )
    else:
        basis = (
            f"As of {covered}, the last day with valid exposure or event rows: --as-of "
            f"{requested} is after it."
        )
    return AnalysisDay(covered, basis, missing)


def _check_folder_option(option: str, path: Path) -> None:
    """Refuse, before any work, a folder option that names a file (or sits under one)."""
    if path.exists() and not path.is_dir():
        raise UsageError(
            f"{option} {path}: is a file, not a folder; pass a folder (it is created if missing)."
        )
    parent = next((p for p in path.absolute().parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise UsageError(f"{option} {path}: {parent} is a file, so no folder can be made there.")


def _check_output_file(option: str, path: Path) -> None:
    """Refuse, before the run, an output file that could not be written after it: a folder, a
    missing parent folder, or one this process may not write into."""
    if path.is_dir():
        raise UsageError(
            f"{option} {path}: is a folder; pass a file name, e.g. {path / 'out.json'}."
        )
    folder = path.parent
    if not folder.is_dir():
        raise UsageError(
            f"{option} {path}: the folder {folder} does not exist; create it or write elsewhere."
        )
    try:
        if path.exists():
            with path.open("a"):
                pass
        else:
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".exp-dagster-probe-"):
                pass
    except OSError as exc:
        raise UsageError(
            f"{option} {path}: cannot be written ({exc.strerror}); choose a path you can write."
        ) from None


def _check_experiment_id(exposures: Path, spec: Any, spec_path: Path) -> None:
    """Refuse logs in which no exposure carries the spec's id, saying which ids they do carry.

    When the id is there, the check stops at the first file holding it (the window's date
    folders are read first), so a correct spec costs one file's ``experiment_id`` column."""
    import difflib

    import duckdb

    from exp_dagster.warehouse.landing import LogSource, experiment_ids

    experiment_id = spec.id
    with duckdb.connect() as conn:
        found = experiment_ids(
            conn, LogSource("exposures", exposures), stop_at=experiment_id, first_days=spec.days()
        )
    if not found or experiment_id in found:
        return  # no rows at all is "no traffic", and an unreadable file is the pipeline's to name
    shown = sorted(found.items(), key=lambda item: (-item[1], item[0]))
    listed = ", ".join(
        f"{printable(repr(key))} ({count:,} row{'s' if count != 1 else ''})"
        for key, count in shown[:10]
    )
    more = f" and {len(shown) - 10} more" if len(shown) > 10 else ""
    close = difflib.get_close_matches(experiment_id, list(found), n=1, cutoff=0.6)
    hint = f" Did you mean {printable(repr(close[0]))}?" if close else ""
    raise UsageError(
        f"{exposures}: no exposure has experiment_id '{experiment_id}' (the id in {spec_path}); "
        f"the ids found are {listed}{more}.{hint} Make the spec's id and the logs' agree."
    )


def cmd_analyze(args: argparse.Namespace) -> int:
    import dagster as dg

    from exp_dagster.locks import exclusive_home
    from exp_dagster.resources import Catalog, LandingZone, Warehouse
    from exp_dagster.warehouse.coverage import last_covered_day
    from exp_dagster.warehouse.landing import LogSource

    if args.json:
        _check_output_file("--json", Path(args.json))
    if args.home:
        _check_folder_option("--home", Path(args.home))
    spec_path = Path(args.experiment)
    metrics_file = _metrics_file(spec_path, args.metrics)
    catalog = Catalog(
        catalog_dir=str(spec_path.parent / ".no-catalog"),
        experiment_files=[str(spec_path)],
        metrics_file=str(metrics_file),
    )
    experiment = catalog.experiments()
    (experiment_id,) = experiment  # one spec file, one experiment
    spec = experiment[experiment_id].spec
    for label, path in (("--exposures", args.exposures), ("--events", args.events)):
        if not Path(path).exists():
            raise SpecError(f"{label} {path}: no such file or folder.")
    _check_experiment_id(Path(args.exposures), spec, spec_path)
    # The day partitions, dated when the asset graph is imported (below, in _run), start at
    # this experiment's first day unless the user set them (exp_dagster.partitions.first_date).
    os.environ.setdefault("EXP_DAGSTER_FIRST_DATE", spec.first_event_day.isoformat())
    from exp_dagster.runner import GateFailedError

    if args.as_of is not None and args.as_of < spec.start:
        raise SpecError(
            f"{spec_path}: the analysis date {args.as_of} is before the experiment's start "
            f"{spec.start}; pass --as-of on or after the start."
        )
    # A running experiment is judged as running, as of the last day its logs cover with valid
    # rows (a quarantined row dated 2100 does not move it); the days after are reported missing.
    covered = last_covered_day(
        spec, LogSource("exposures", Path(args.exposures)), LogSource("events", Path(args.events))
    )
    day = analysis_day(spec.start, spec.end, args.as_of, covered)
    as_of = day.as_of
    work = Path(args.home) if args.home else Path(tempfile.mkdtemp(prefix="exp-dagster-"))
    work.mkdir(parents=True, exist_ok=True)
    database = work / "warehouse.duckdb"
    resources = {
        "warehouse": Warehouse(database=str(database), **home.duckdb_settings()),
        "landing": LandingZone(
            exposures_path=str(args.exposures),
            events_path=str(args.events),
            ranking_path=args.ranking,
            predictions_path=args.predictions,
            interleaving_path=args.interleaving,
        ),
        "catalog": catalog,
    }
    status = 0
    evaluation: list[dict[str, Any]] = []
    parity: list[dict[str, Any]] = []
    quality = None
    did_effects: list[dict[str, Any]] | None = [] if spec.did is not None else None
    bandit_allocations: list[dict[str, Any]] | None = [] if spec.bandit is not None else None
    try:
        # One run at a time per home, from the first write to the last read: another run's
        # partitions must not replace this one's in between (exp_dagster.locks).
        with exclusive_home(work, f"exp-dagster analyze {experiment_id}", say=_say):
            try:
                with dg.DagsterInstance.ephemeral() as instance:
                    _run(resources, instance, experiment_id, as_of)
                rows, decision = _read_outcome(database, experiment_id, as_of)
                evaluation, parity = _read_model_evaluation(database, experiment_id, as_of)
                quality = _read_quality(database, experiment[experiment_id], as_of)
                did_effects, bandit_allocations = _read_design_rows(database, spec, as_of)
            except GateFailedError as failure:
                decision = gate_failure_decision(failure, experiment[experiment_id], as_of)
                rows, status = [], 1
        if args.home:  # `exp-dagster report --home` finds the experiment by its spec here
            _keep_catalog(work, spec_path, metrics_file)
        report = _keep_report(
            home.reports_dir(database) / experiment_id / f"{as_of.isoformat()}.html",
            Path(args.report_dir) if args.report_dir else None,
            experiment_id,
            kept_home=bool(args.home),
        )
    finally:
        if not args.home:
            shutil.rmtree(work, ignore_errors=True)
    _print_outcome(experiment_id, as_of, rows, decision, day.notes())
    _print_quarantine(quality)
    _print_model_evaluation(evaluation, parity, alpha=spec.alpha)
    if args.json:
        version = experiment[experiment_id].version
        document = result_document(
            experiment_id,
            as_of,
            version,
            decision,
            rows,
            evaluation,
            parity,
            day,
            did_effects=did_effects,
            bandit_allocations=bandit_allocations,
        )
        try:
            Path(args.json).write_text(json.dumps(document, indent=2) + "\n")
        except OSError as exc:  # e.g. the disk filled during the run: name the file
            raise OSError(exc.errno, exc.strerror, args.json) from exc
        _say(f"wrote {args.json}")
    if report is not None:
        _say(f"report: {report}")
    return status


def _metrics_file(spec_path: Path, option: str | None) -> Path:
    """The metric catalog for ``analyze``: ``--metrics``, else ``metrics.yaml`` next to the spec,
    else one folder up (the ``catalog/experiments/<id>.yaml`` layout), else the project's."""
    if option:
        return Path(option)
    for candidate in (spec_path.parent / "metrics.yaml", spec_path.parent.parent / "metrics.yaml"):
        if candidate.is_file():
            return candidate
    return home.catalog_dir() / "metrics.yaml"


def _keep_catalog(work: Path, spec_path: Path, metrics_file: Path) -> None:
    """A copy of the spec and its metric catalog in ``<home>/catalog``, the layout ``report
    --home`` reads; replaced on every run, so it is the spec the warehouse was built from."""
    experiments = work / "catalog" / "experiments"
    experiments.mkdir(parents=True, exist_ok=True)
    for stale in experiments.glob("*.yaml"):
        stale.unlink()
    shutil.copyfile(spec_path, experiments / spec_path.name)
    shutil.copyfile(metrics_file, work / "catalog" / "metrics.yaml")


# Where analyze keeps the HTML report when it keeps no home: a folder of the working directory.
DEFAULT_REPORT_DIR = Path("exp_dagster_reports")


def _keep_report(
    produced: Path, report_dir: Path | None, experiment_id: str, *, kept_home: bool
) -> Path | None:
    """The day's HTML report where the user can open it: ``--report-dir``, else where the run
    wrote it when the home is kept, else ``./exp_dagster_reports/<experiment>/<day>.html``. A
    report that cannot be copied is a warning (the results are printed anyway), not an error."""
    if not produced.is_file():
        return None
    if report_dir is None and kept_home:
        return produced
    target = (report_dir or DEFAULT_REPORT_DIR) / experiment_id / produced.name
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(produced, target)
    except OSError as exc:
        _say(
            f"warning: the report could not be copied to {target} ({exc.strerror}); pass "
            f"--report-dir or --home to keep it elsewhere."
        )
        return None
    return target


# ── init ─────────────────────────────────────────────────────────────────────────────────────

SPEC_TEMPLATE = """\
# The experiment {id}: every field is described, with its default, in docs/spec.md.
# Run it with: exp-dagster analyze --experiment {spec} --exposures ... --events ...

# must equal experiment_id in the exposure logs
id: {id}
description: ""  # what is being tested, in a sentence
owner: ""  # who to ask
unit: user  # the randomisation unit; the logs' unit_id is one of these
# Set hash_salt when exp_dagster's hash assigns the variants: every exposure's variant is then
# recomputed, and disagreeing ones are quarantined.
# hash_salt: {id}-salt
variants:  # weights sum to 1; exactly one control
  - {{name: control, weight: 0.5, control: true}}
  - {{name: treatment, weight: 0.5}}
# first and last day (UTC), inclusive
start: {start}
end: {end}
pre_period_days: 7  # days before each unit's exposure used for CUPED (0: none)
# metric names from {metrics}: the primary decides SHIP / ROLLBACK, secondary ones are
# reported, guardrails must not get worse by more than a margin, e.g.
#   guardrails: [{{metric: latency_p95, margin: 0.05, margin_type: relative}}]
metrics:
  primary: {primary}
  secondary: [{secondary}]
  guardrails: []
segments: []  # exposure-log columns to break results down by, e.g. [platform]
alpha: 0.05  # two-sided significance level
power: 0.8  # the design's power ...
mde: 0.02  # ... for this relative lift (2 %)
# analysis:  # optional: sequential design, multiplicity, relative CI, ... (docs/spec.md)
#   sequential: group_sequential  # group_sequential | always_valid | fixed_horizon
"""

METRICS_TEMPLATE = """\
# The metric catalog: how each metric is computed from the event logs (unit_id, event_time,
# event, value). Every field is described in docs/spec.md ("MetricSpec").
#   mean        per-unit sum (aggregate: sum) or count (aggregate: count) of `event`
#   proportion  1 if the unit has at least one `event`, else 0
#   ratio       per-unit sum of `numerator` over sum of `denominator` (e.g. clicks / impressions)
#   quantile    the `level` quantile of every `event` value in the arm (e.g. p95 latency)
metrics:
  ctr:
    description: Clicks per impression.
    type: ratio
    numerator: click
    denominator: impression
    direction: increase
  conversion:
    description: Share of units with at least one purchase.
    type: proportion
    event: purchase
    direction: increase
  revenue:
    description: Purchase value per unit.
    type: mean
    event: purchase
    aggregate: sum
    direction: increase
  latency_p95:
    description: 95th percentile of request latency, in milliseconds.
    type: quantile
    event: latency_ms
    level: 0.95
    direction: decrease
"""


def cmd_init(args: argparse.Namespace) -> int:
    """Write a commented experiment spec (and a metric catalog when there is none) to start from."""
    import re

    from exp_dagster.spec import NAME_PATTERN, load_experiment, load_metric_catalog

    if not re.match(NAME_PATTERN, args.id):
        raise UsageError(
            f"experiment id {args.id!r} is not a name: use a letter, then up to 63 letters, "
            f"digits, '_' or '-' (it must equal experiment_id in your exposure logs)."
        )
    if args.days < 1:
        raise UsageError(f"--days must be at least 1; got {args.days}.")
    catalog = Path(args.dir)
    _check_folder_option("--dir", catalog)
    spec_path = catalog / "experiments" / f"{args.id}.yaml"
    if spec_path.exists():
        raise UsageError(f"{spec_path} exists already; edit it, or pick another id or --dir.")
    metrics_path = catalog / "metrics.yaml"
    wrote_metrics = not metrics_path.exists()
    if wrote_metrics:
        catalog.mkdir(parents=True, exist_ok=True)
        metrics_path.write_text(METRICS_TEMPLATE)
    names = list(load_metric_catalog(metrics_path).metrics)
    if not names:
        raise UsageError(f"{metrics_path} defines no metric; add one (see docs/spec.md).")
    start = args.start or dt.date.today()
    spec_path.parent.mkdir(parents=True, exist_ok=True)
    spec_path.write_text(
        SPEC_TEMPLATE.format(
            id=args.id,
            spec=spec_path,
            start=start.isoformat(),
            end=(start + dt.timedelta(days=args.days - 1)).isoformat(),
            metrics=metrics_path,
            primary=names[0],
            secondary=", ".join(names[1:3]),
        )
    )
    load_experiment(spec_path, load_metric_catalog(metrics_path))  # the template must be valid
    if wrote_metrics:
        _say(f"wrote {metrics_path} (example metrics: edit the event names to match your logs)")
    _say(f"wrote {spec_path}")
    _say(
        "next: log exposures (experiment_id, unit_id, variant, exposed_at) and events (unit_id, "
        "event_time, event, value), then run\n"
        f"  exp-dagster analyze --experiment {spec_path} --exposures EXPOSURES --events EVENTS"
    )
    return 0


# ── backfill ─────────────────────────────────────────────────────────────────────────────────


def cmd_backfill(args: argparse.Namespace) -> int:
    """Queue the experiment's days through the instance (see :mod:`exp_dagster.backfill`)."""
    home.ensure_dagster_home()
    import dagster as dg

    from exp_dagster import backfill
    from exp_dagster.resources import default_resources

    resources = default_resources()
    experiment = resources["catalog"].experiment(args.experiment)  # type: ignore[attr-defined]
    the_plan = backfill.plan_backfill(experiment, resources["landing"], args.start, args.end)  # type: ignore[arg-type]
    if not the_plan.experiment_days:
        raise SpecError(
            f"{args.experiment} has no exposure logs between {args.start} and {args.end} in "
            f"{home.exposures_path()}; check the landing zone or the dates."
        )
    with dg.DagsterInstance.get() as instance:
        try:
            ids = backfill.launch(instance, experiment, the_plan, Path(args.workspace), _say)
        except backfill.BackfillError as error:
            _say(f"error: {error}")
            return 1
        _say(
            f"backfill {', '.join(ids)} queued behind the one-writer limit; the dagster daemon "
            "(make ui) launches the runs one at a time."
        )
        if not args.wait:
            return 0
        runs = backfill.wait(instance, ids, _say)
    failed = [run for run in runs if run.status != dg.DagsterRunStatus.SUCCESS]
    for run in failed:
        _say(f"error: run {run.run_id} ({run.tags.get('dagster/partition')}) {run.status.value}")
    return 1 if failed else 0


# ── report ───────────────────────────────────────────────────────────────────────────────────


def cmd_report(args: argparse.Namespace) -> int:
    """Render (again) the HTML report of an experiment from the home's warehouse."""
    import duckdb

    from exp_dagster.locks import read_only_connection
    from exp_dagster.report.data import ReportDataError, latest_decision_day, read_report_data
    from exp_dagster.report.html import write_report

    database = Path(args.home) / "warehouse.duckdb" if args.home else home.warehouse_path()
    if not database.exists():
        raise SpecError(
            f"no warehouse at {database}; run `exp-dagster demo` (or `exp-dagster analyze ... "
            f"--home DIR`, or materialise the experiment in the UI) first, or point --home / "
            f"EXP_DAGSTER_HOME / EXP_DAGSTER_WAREHOUSE at yours."
        )
    experiment = _report_catalog(args.home).experiment(args.experiment)
    try:
        with read_only_connection(database, say=_say) as conn:  # waits for a writing run
            day = args.as_of or latest_decision_day(conn, args.experiment)
            if day is None:
                raise ReportDataError(
                    f"experiment '{args.experiment}' has no decision in {database} yet; "
                    f"materialise its partitions first (exp-dagster demo or analyze, or the UI)."
                )
            gates = _recorded_gates(args.experiment, day)
            data = read_report_data(conn, experiment, day, gates)
    except ReportDataError as error:
        _say(f"error: {error}")
        return 2
    except duckdb.IOException as error:
        _say(f"error: cannot read {database} ({error}).")
        return 1
    path, _ = write_report(data, home.reports_dir(database))
    _show(str(path))
    if args.open:
        import webbrowser

        if not webbrowser.open(path.as_uri()):
            _say(f"no browser could be started here; open {path} yourself.")
    return 0


def _report_catalog(home_option: str | None) -> Any:
    """The catalog ``report`` looks the experiment up in: the one ``analyze --home`` kept in
    that home (``<home>/catalog``), else the project's (``EXP_DAGSTER_CATALOG``)."""
    from exp_dagster.resources import Catalog, default_resources

    if home_option:
        kept = Path(home_option) / "catalog"
        if (kept / "metrics.yaml").is_file():
            return Catalog(catalog_dir=str(kept))
    return default_resources()["catalog"]


def _recorded_gates(experiment_id: str, day: dt.date) -> list[Any]:
    """The gates' latest results in the home's Dagster instance (empty when it has none)."""
    import dagster as dg

    from assets.report import gate_results

    home.ensure_dagster_home()
    with dg.DagsterInstance.get() as instance:
        return list(gate_results(instance, experiment_id, day))


# ── entry point ──────────────────────────────────────────────────────────────────────────────


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="exp-dagster", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def simulation_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--units", type=int, help="eligible units (default 40,000)")
        p.add_argument("--seed", type=int, help="random seed (default 7)")
        p.add_argument("--days", type=int, help="experiment days (default 14)")
        p.add_argument("--pre-days", type=int, dest="pre_days", help="pre-period days (default 7)")

    init_parser = sub.add_parser(
        "init", help="write a commented experiment spec (and metric catalog) to start from"
    )
    init_parser.add_argument("id", help="the experiment id (experiment_id in your exposure logs)")
    init_parser.add_argument(
        "--dir", default="catalog", help="the catalog folder (default: ./catalog)"
    )
    init_parser.add_argument("--start", type=_date, help="first day (default: today)")
    init_parser.add_argument("--days", type=int, default=14, help="planned days (default 14)")
    init_parser.set_defaults(func=cmd_init)

    simulate_parser = sub.add_parser("simulate", help="write seeded logs of a ranker A/B test")
    simulate_parser.add_argument("--out", required=True, help="folder to write into")
    simulate_parser.add_argument("--format", choices=["parquet", "csv", "jsonl"])
    simulation_options(simulate_parser)
    simulate_parser.set_defaults(func=cmd_simulate)

    demo_parser = sub.add_parser(
        "demo", help="simulate, materialise every partition, print the decision"
    )
    demo_parser.add_argument("--fresh", action="store_true", help="delete the home folder first")
    showcase = demo_parser.add_mutually_exclusive_group()
    showcase.add_argument(
        "--experiment",
        choices=[DEMO_EXPERIMENT, *SHOWCASE_EXPERIMENTS],
        help=(
            "which experiment of the catalog (default ranker_v2); the showcases run in their own "
            "home, <home>/showcase/<id>"
        ),
    )
    showcase.add_argument(
        "--all", action="store_true", help="ranker_v2, then every showcase experiment"
    )
    simulation_options(demo_parser)
    demo_parser.set_defaults(func=cmd_demo)

    analyze_parser = sub.add_parser("analyze", help="the pipeline on your own logs, no UI")
    analyze_parser.add_argument("--experiment", required=True, help="the experiment spec (YAML)")
    analyze_parser.add_argument("--exposures", required=True, help="exposure logs: file or folder")
    analyze_parser.add_argument("--events", required=True, help="event logs: file or folder")
    analyze_parser.add_argument(
        "--as-of",
        type=_date,
        dest="as_of",
        help=(
            "analysis date (default: the end date, capped by the last day of the window with "
            "valid exposure or event rows; later days are reported as missing)"
        ),
    )
    analyze_parser.add_argument(
        "--metrics",
        help=(
            "metric catalog (default: metrics.yaml next to the spec, else one folder up, else "
            "the project's catalog/metrics.yaml)"
        ),
    )
    for name, what in (
        ("ranking", "ranking logs (optional; model evaluation)"),
        ("predictions", "prediction logs (optional; classifier metrics and drift)"),
        ("interleaving", "team-draft interleaving logs (optional)"),
    ):
        analyze_parser.add_argument(f"--{name}", help=f"{what}: file or folder")
    analyze_parser.add_argument(
        "--json", help="also write the results as JSON here (checked before the run starts)"
    )
    analyze_parser.add_argument(
        "--home",
        help=(
            "keep the warehouse, its reports and a copy of the spec in this folder, so that a "
            "rerun is incremental and `report --home` finds it (default: a temporary one)"
        ),
    )
    analyze_parser.add_argument(
        "--report-dir",
        dest="report_dir",
        help=(
            "keep the HTML report in <DIR>/<experiment>/<day>.html (default: the home's reports "
            "folder with --home, else ./exp_dagster_reports)"
        ),
    )
    analyze_parser.set_defaults(func=cmd_analyze)

    report_parser = sub.add_parser(
        "report", help="write (and open) an experiment's HTML report from the home's warehouse"
    )
    report_parser.add_argument("--experiment", required=True, help="the experiment id")
    report_parser.add_argument(
        "--as-of", type=_date, dest="as_of", help="the day (default: the last analysed day)"
    )
    report_parser.add_argument(
        "--home", help="the folder an `analyze --home` run kept (default: EXP_DAGSTER_HOME)"
    )
    report_parser.add_argument("--open", action="store_true", help="open it in a web browser")
    report_parser.set_defaults(func=cmd_report)

    backfill_parser = sub.add_parser(
        "backfill", help="re-run an experiment's days through the run queue (needs the daemon)"
    )
    backfill_parser.add_argument("--experiment", required=True, help="the experiment id")
    backfill_parser.add_argument("--from", dest="start", type=_date, required=True)
    backfill_parser.add_argument("--to", dest="end", type=_date, required=True)
    backfill_parser.add_argument(
        "--workspace",
        default=str(home.PROJECT_ROOT / "workspace.yaml"),
        help="the workspace the daemon serves (default: the project's workspace.yaml)",
    )
    backfill_parser.add_argument(
        "--wait", action="store_true", help="wait for the runs, printing progress"
    )
    backfill_parser.set_defaults(func=cmd_backfill)
    return parser


def _os_error_message(exc: OSError) -> str:
    """One sentence for an error of the operating system: the path, and for a full disk, that
    it is the disk (not the input) and where the space is needed."""
    where = f" {exc.filename}" if exc.filename else ""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return (
            f"the disk is full: no space left to write{where} ({exc.strerror}); free some space "
            f"there, or point TMPDIR, EXP_DAGSTER_DUCKDB_TEMP_DIR or --home at a disk with room."
        )
    return f"cannot use{where}: {exc.strerror or exc}; check the path and its permissions."


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("DAGSTER_CLI_LOG_LEVEL", "WARNING")
    try:
        home.check_settings()
        home.contain_caches()
        from exp_dagster.locks import HomeBusyError
        from exp_dagster.resources import WarehouseDiskFullError, WarehouseMemoryError
        from exp_dagster.runner import PipelineError, PipelineInputError
        from exp_dagster.warehouse.landing import InputError

        try:
            return int(args.func(args))
        except (InputError, WarehouseMemoryError, WarehouseDiskFullError, HomeBusyError) as exc:
            _say(f"error: {printable(str(exc))}")  # one line: a newline in a name is escaped
            return 2
        except PipelineInputError as exc:  # one line per failed step (escaped by the runner)
            _say(f"error: {exc}")
            return 2
        except PipelineError as exc:
            _say(f"error: the pipeline stopped:\n{exc}")
            return 1
    except (SettingError, UsageError) as exc:
        _say(f"error: {printable(str(exc))}")
        return 2
    except SpecError as exc:  # an invalid spec lists its problems one per line
        _say(f"error: {exc}")
        return 2
    except OSError as exc:
        _say(f"error: {printable(_os_error_message(exc))}")
        return 2
    except KeyboardInterrupt:
        _say("interrupted.")
        return 130
    except Exception as exc:
        if os.environ.get("EXP_DAGSTER_VERBOSE"):
            raise
        first_line = (str(exc).strip().splitlines() or [""])[0]
        _say(
            f"error: unexpected {type(exc).__name__}: {first_line} (set EXP_DAGSTER_VERBOSE=1 "
            f"to see where; please report it with the command that raised it)."
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
