"""Run the asset graph in process for one experiment: what ``make demo`` and ``analyze`` do.

It runs the same jobs the UI and the schedules run, on the same instance, so everything it
materialises is visible afterwards in ``make ui``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import dagster as dg

from exp_dagster.automation import analyze_experiment_day_job, ingest_events_job
from exp_dagster.spec import ResolvedExperiment
from exp_dagster.text import printable
from exp_dagster.warehouse.landing import LogSource

Progress = Callable[[str], None]


class PipelineError(RuntimeError):
    """A run failed or a gate stopped it; the message says which partition, step and why."""


class PipelineInputError(PipelineError):
    """A run failed on its input (a log file or a spec): the user has something to fix."""


class GateFailedError(PipelineError):
    """A blocking data gate failed, so nothing downstream of it ran: the analysis is INVALID.

    Attributes:
        failures: one sentence per failed gate (which gate, which asset and partition, why).
    """

    def __init__(self, failures: list[str]) -> None:
        super().__init__("\n".join(failures))
        self.failures = failures


# Errors the user fixes (the input, a spec, a setting, the memory limit, a full disk): exit 2.
_INPUT_ERRORS = {
    "InputError",
    "SpecError",
    "SettingError",
    "WarehouseMemoryError",
    "WarehouseDiskFullError",
}


@dataclass(frozen=True)
class Plan:
    """The partitions to materialise for an experiment, in order.

    Attributes:
        event_days: days of event facts (the pre-period of the first units, then the window).
        experiment_days: the experiment's days through the as-of date.
    """

    event_days: tuple[dt.date, ...]
    experiment_days: tuple[dt.date, ...]


def plan(experiment: ResolvedExperiment, events: LogSource, through: dt.date) -> Plan:
    """The partitions an analysis as of ``through`` needs: days that have (or may have) data."""
    # Here, not at the top: the command line imports this module's errors before `analyze` dates
    # the day partitions from its spec (exp_dagster.partitions.first_date).
    from exp_dagster.partitions import FIRST_DATE

    spec = experiment.spec
    last = min(through, spec.end)
    first_event_day = spec.first_event_day
    first_partition = dt.date.fromisoformat(FIRST_DATE)
    if first_event_day < first_partition:
        raise PipelineInputError(
            f"experiment '{spec.id}' needs days from {first_event_day} (start {spec.start} minus "
            f"{spec.pre_period_days} pre-period days), but day partitions begin on "
            f"{first_partition} (EXP_DAGSTER_FIRST_DATE, else the first day the catalog's specs "
            f"read); set EXP_DAGSTER_FIRST_DATE={first_event_day} or earlier."
        )
    wanted = [
        first_event_day + dt.timedelta(days=i) for i in range((last - first_event_day).days + 1)
    ]
    if events.is_hive:
        available = set(events.dates())
        # A pre-period day may predate the logs' retention; a day of the window may not: its
        # units would silently count as inactive.
        holes = [day for day in spec.days(through=last) if day not in available]
        if holes:
            raise PipelineInputError(
                f"{events.path}: no date= folder for {', '.join(map(str, holes))}, day(s) of "
                f"experiment '{spec.id}'; re-export those days' event logs (an empty folder "
                f"says a day truly had no events)."
            )
        wanted = [day for day in wanted if day in available]
    return Plan(event_days=tuple(wanted), experiment_days=tuple(spec.days(through=last)))


def _failures(
    result: dg.ExecuteInProcessResult, partition: str
) -> tuple[list[str], list[str], bool]:
    """Failed gates, failed steps, and whether a step failed on its input."""
    gates: list[str] = []
    lines: list[str] = []
    input_error = False
    for evaluation in result.get_asset_check_evaluations():
        if not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR:
            summary = evaluation.metadata.get("summary")
            detail = summary.value if summary is not None else evaluation.description
            gates.append(
                f"Gate {evaluation.check_name} failed on {evaluation.asset_key.to_user_string()} "
                f"[{partition}]: {detail}"
            )
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data is not None:
            error = event.step_failure_data.error
            if error is not None and error.cls_name == "DagsterAssetCheckFailedError":
                continue  # already reported above, with the gate's own words
            cause = error.cause if error and error.cause else error
            message = cause.message.strip() if cause else "unknown error"
            if cause is not None:
                # Dagster prefixes the class with its module ("exp_dagster.warehouse.landing.
                # InputError: ..."): the user needs the sentence, not where it was raised.
                prefix, colon, rest = message.partition(": ")
                if colon and prefix.split(".")[-1] == cause.cls_name:
                    message = rest
                if cause.cls_name in _INPUT_ERRORS:
                    input_error = True
                    message = printable(message)  # one line, whatever names it quotes
            lines.append(f"step {event.step_key} failed [{partition}]: {message}")
    return list(dict.fromkeys(gates)), list(dict.fromkeys(lines)), input_error


def _execute(
    job: dg.JobDefinition,
    partition_key: str,
    instance: dg.DagsterInstance,
    label: str,
    log_level: str,
) -> None:
    result = job.execute_in_process(
        run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
        partition_key=partition_key,
        instance=instance,
        raise_on_error=False,
    )
    if not result.success:
        gates, steps, input_error = _failures(result, label)
        if input_error:
            raise PipelineInputError("\n".join(steps))
        if gates and not steps:
            raise GateFailedError(gates)
        raise PipelineError("\n".join(gates + steps) or f"run for {label} failed")


def materialize(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    experiment: ResolvedExperiment,
    the_plan: Plan,
    progress: Progress | None = None,
    log_level: str = "CRITICAL",
) -> None:
    """Register the experiment's partition and materialise every partition of the plan.

    Dagster's own console log is quiet by default (``log_level``): progress comes through
    ``progress`` and failures as a :class:`PipelineError` that says what went wrong; every
    run's full event log is in the instance, e.g. in the UI.
    """
    from exp_dagster.partitions import experiment_day_key, experiments

    say = progress or (lambda _message: None)
    experiment_id = experiment.spec.id
    instance.add_dynamic_partitions(experiments.name or "experiment", [experiment_id])
    ingest = defs.resolve_job_def(ingest_events_job.name)
    analyze = defs.resolve_job_def(analyze_experiment_day_job.name)
    total = len(the_plan.event_days) + len(the_plan.experiment_days)
    step = 0
    for day in the_plan.event_days:
        step += 1
        say(f"[{step:>3}/{total}] event_facts {day}")
        _execute(ingest, day.isoformat(), instance, f"date {day}", log_level)
    for day in the_plan.experiment_days:
        step += 1
        say(f"[{step:>3}/{total}] {experiment_id} {day}: exposures → … → decision")
        key = experiment_day_key(experiment_id, day)
        _execute(analyze, str(key), instance, f"{experiment_id} {day}", log_level)
