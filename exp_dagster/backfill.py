"""``exp-dagster backfill``: re-run an experiment's days through the instance's run queue.

It uses Dagster's own job backfills (``dagster job backfill``, one for the event facts, then one for
the analyses, in date order), so the runs are recorded as backfills in the UI, carry the writer tag,
and wait in the run queue behind any other writing run instead of failing on the DuckDB lock. The
dagster daemon (``make ui``, or ``dagster-daemon run``) launches them one at a time, first in,
first out. Re-running a partition replaces exactly its rows, so a backfill gives the same tables
as the first run.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from exp_dagster.automation import analyze_experiment_day_job, ingest_events_job
from exp_dagster.partitions import experiment_day_key, experiments
from exp_dagster.resources import LandingZone
from exp_dagster.spec import ResolvedExperiment, SpecError
from exp_dagster.triggers import event_days_needed, experiment_days_with_data

Progress = Callable[[str], None]
_LAUNCHED = re.compile(r"Launched backfill job `([^`]+)`")
_DONE = {
    dg.DagsterRunStatus.SUCCESS,
    dg.DagsterRunStatus.FAILURE,
    dg.DagsterRunStatus.CANCELED,
}


class BackfillError(RuntimeError):
    """Dagster refused the backfill; the message says why."""


@dataclass(frozen=True)
class BackfillPlan:
    """Attributes:
    event_days: event-fact days to recompute (the pre-period too when the range starts the window).
    experiment_days: the experiment's days to analyse again, in date order.
    """

    event_days: tuple[dt.date, ...]
    experiment_days: tuple[dt.date, ...]


def plan_backfill(
    experiment: ResolvedExperiment, landing: LandingZone, first: dt.date, last: dt.date
) -> BackfillPlan:
    """The days of ``[first, last]`` that have data, clipped to the window (and its pre-period)."""
    spec = experiment.spec
    if last < first:
        raise SpecError(f"--from {first} is after --to {last}; give the earlier date first.")
    if last < spec.start or first > spec.end:
        raise SpecError(
            f"{spec.id} runs from {spec.start} to {spec.end}; the range {first} to {last} is "
            f"outside it. Pick dates inside the window."
        )
    floor = first if first > spec.start else dt.date.min  # the window's start needs its pre-period
    return BackfillPlan(
        event_days=tuple(d for d in event_days_needed(experiment, landing, last) if d >= floor),
        experiment_days=tuple(
            d for d in experiment_days_with_data(experiment, landing, last) if d >= first
        ),
    )


def submit(job_name: str, partition_keys: Sequence[str], workspace: Path) -> str:
    """Queue a job backfill of ``partition_keys`` (in that order); returns the backfill id."""
    command = [
        *(sys.executable, "-m", "dagster", "job", "backfill"),
        *("-w", str(workspace), "-j", job_name, "--noprompt"),
        *("--partitions", ",".join(partition_keys)),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False, env=os.environ)
    found = _LAUNCHED.search(result.stdout)
    if result.returncode != 0 or found is None:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise BackfillError(
            f"dagster could not queue the {job_name} backfill: "
            f"{detail[-1] if detail else 'no output'}"
        )
    return found.group(1)


def launch(
    instance: dg.DagsterInstance,
    experiment: ResolvedExperiment,
    the_plan: BackfillPlan,
    workspace: Path,
    progress: Progress,
) -> list[str]:
    """Register the experiment's partition, then queue the event facts and the analyses."""
    instance.add_dynamic_partitions(experiments.name or "experiment", [experiment.spec.id])
    ids = []
    if the_plan.event_days:
        keys = [day.isoformat() for day in the_plan.event_days]
        ids.append(submit(ingest_events_job.name, keys, workspace))
        progress(f"queued {len(keys)} event-fact run(s): {keys[0]} … {keys[-1]}")
    if the_plan.experiment_days:
        keys = [str(experiment_day_key(experiment.spec.id, d)) for d in the_plan.experiment_days]
        ids.append(submit(analyze_experiment_day_job.name, keys, workspace))
        progress(f"queued {len(keys)} analysis run(s) of {experiment.spec.id}")
    return ids


def wait(
    instance: dg.DagsterInstance,
    backfill_ids: Sequence[str],
    progress: Progress,
    poll_seconds: float = 2.0,
) -> list[dg.DagsterRun]:
    """Wait for every run of the backfills to finish, reporting progress; returns the runs."""
    runs: list[dg.DagsterRun] = []
    reported = -1
    while True:
        runs = [
            run
            for backfill_id in backfill_ids
            for run in instance.get_runs(dg.RunsFilter.for_backfill(backfill_id))
        ]
        finished = sum(run.status in _DONE for run in runs)
        if finished != reported:
            queued = sum(run.status == dg.DagsterRunStatus.QUEUED for run in runs)
            progress(f"{finished}/{len(runs)} run(s) finished, {queued} queued")
            reported = finished
        if runs and finished == len(runs):
            return runs
        time.sleep(poll_seconds)
