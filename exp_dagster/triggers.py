"""What starts runs by itself: the registry and landing sensors, the daily schedules, and the
declarative automation that refreshes downstream partitions.

The partition grid is sparse (docs/architecture.md, decision 8): Dagster sees every experiment ×
every day, but an experiment only has data inside its window. So the sensors and schedules, which
know the specs, request only the days of a window that have data, always in date order (cumulative
metrics and pre-periods read earlier days, and the run queue admits writers one at a time, first in
first out). Declarative automation only reacts to partitions that were actually updated, and ignores
the shared daily ``event_facts``, whose fan-out to every experiment would reach days outside their
windows: changed event files are routed by the landing sensor instead, which knows the windows.

Every sensor ticks at most every ``EXP_DAGSTER_SENSOR_INTERVAL`` seconds (default 30) and is on by
default, as are the schedules.
"""

# No `from __future__ import annotations` here: Dagster inspects the annotations of the sensor and
# schedule functions to find their resources, and postponed (string) annotations defeat that.

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from exp_dagster import home
from exp_dagster.automation import (
    WHOLE_DAY_TAG,
    WRITER_TAG,
    analyze_experiment_day_job,
    ingest_events_job,
)
from exp_dagster.partitions import FIRST_DATE, experiment_day_key, experiment_days, experiments
from exp_dagster.resources import Catalog, LandingZone
from exp_dagster.spec import ResolvedExperiment, SpecError, load_experiment
from exp_dagster.warehouse.landing import LogSource

SENSOR_INTERVAL = home.sensor_interval()
EXPERIMENT_DIMENSION = experiments.name or "experiment"
# Roots of the graph: the sensors and schedules request them; automation refreshes the rest.
SENSOR_DRIVEN_ASSETS = ("exposures", "event_facts")
_FINISHED_BADLY = {dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}


# ── which days an experiment has data for ────────────────────────────────────────────────────


@dataclass(frozen=True)
class Registry:
    """The catalog as the sensors see it.

    Attributes:
        experiments: every valid spec, by id.
        errors: one sentence per invalid file (file, field, what to do).
        invalid_ids: ids of the files that failed to load: their partitions are left alone.
    """

    experiments: dict[str, ResolvedExperiment]
    errors: tuple[str, ...] = ()
    invalid_ids: frozenset[str] = field(default_factory=frozenset)


def scan_registry(catalog: Catalog) -> Registry:
    """Load every spec on its own, so one invalid file does not hide the others."""
    try:
        metrics = catalog.metric_catalog()
    except SpecError as error:
        return Registry({}, (str(error),), frozenset({"*"}))
    files = sorted((Path(catalog.catalog_dir) / "experiments").glob("*.yaml"))
    files += [Path(path) for path in catalog.experiment_files]
    found: dict[str, ResolvedExperiment] = {}
    errors: list[str] = []
    invalid: set[str] = set()
    for path in files:
        try:
            resolved = load_experiment(path, metrics)
        except SpecError as error:
            errors.append(str(error))
            invalid.add(path.stem)
            continue
        found[resolved.spec.id] = resolved
    return Registry(found, tuple(errors), frozenset(invalid))


def _dates_of(source: LogSource) -> set[dt.date] | None:
    """The days a hive-style source has folders for; None when the layout does not say."""
    if not source.path.exists():
        return set()
    return set(source.dates()) if source.is_hive else None


def experiment_days_with_data(
    experiment: ResolvedExperiment, landing: LandingZone, through: dt.date
) -> list[dt.date]:
    """The window's days through ``through`` that have exposure logs, in date order."""
    spec = experiment.spec
    window = spec.days(through=min(spec.end, through))
    available = _dates_of(landing.exposures())
    return window if available is None else [day for day in window if day in available]


def event_days_needed(
    experiment: ResolvedExperiment, landing: LandingZone, through: dt.date
) -> list[dt.date]:
    """The days of event facts the window needs: its pre-period, then the window itself."""
    spec = experiment.spec
    first = max(spec.first_event_day, dt.date.fromisoformat(FIRST_DATE))
    last = min(spec.end, through)
    wanted = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    available = _dates_of(landing.events())
    return wanted if available is None else [day for day in wanted if day in available]


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def _analysis_request(experiment: ResolvedExperiment, day: dt.date, why: str, key: str):
    return dg.RunRequest(
        job_name=analyze_experiment_day_job.name,
        partition_key=str(experiment_day_key(experiment.spec.id, day)),
        run_key=key,
        tags={
            **WRITER_TAG,
            "exp_dagster/experiment": experiment.spec.id,
            "exp_dagster/spec_version": experiment.version,
            "exp_dagster/trigger": why,
        },
    )


def _ingest_request(day: dt.date, why: str, key: str):
    return dg.RunRequest(
        job_name=ingest_events_job.name,
        partition_key=day.isoformat(),
        run_key=key,
        tags={**WRITER_TAG, "exp_dagster/trigger": why},
    )


# ── registry sensor ──────────────────────────────────────────────────────────────────────────


def _materialized_at_version(
    instance: dg.DagsterInstance, experiment: ResolvedExperiment, wanted: Sequence[dt.date]
) -> set[dt.date]:
    """The days whose decision is already materialised from this spec version.

    Only the last materialised day's version is read (one query): a spec edited while the sensor
    was stopped changes that day's version too, and then everything is re-run.
    """
    done = instance.get_materialized_partitions(dg.AssetKey("decision"))
    keys = {str(experiment_day_key(experiment.spec.id, day)): day for day in wanted}
    materialized = {day for key, day in keys.items() if key in done}
    if not materialized:
        return set()
    last_key = str(experiment_day_key(experiment.spec.id, max(materialized)))
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("decision"), asset_partitions=[last_key]),
        limit=1,
    ).records
    event = records[0].asset_materialization if records else None
    version = event.metadata.get("spec_version") if event else None
    return materialized if version and version.value == experiment.version else set()


@dg.sensor(
    name="experiment_registry",
    jobs=[ingest_events_job, analyze_experiment_day_job],
    minimum_interval_seconds=SENSOR_INTERVAL,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def experiment_registry(
    context: dg.SensorEvaluationContext, catalog: Catalog, landing: LandingZone
) -> dg.SensorResult:
    """Watches ``catalog/experiments/*.yaml``. A new spec adds its experiment partition and
    requests the window's days that have data (event facts first, then each day's analysis in date
    order); a changed spec (new version hash) re-runs its days; a removed spec loses its
    partition. An invalid file is reported on the tick, naming the file and the field, and the
    other experiments carry on."""
    versions: dict[str, str] = json.loads(context.cursor or "{}")
    registry = scan_registry(catalog)
    for error in registry.errors:
        context.log.error(error)
    # The day partitions were dated when the code location loaded (partitions.first_date): a
    # spec added since that reads earlier days waits, unregistered, for a reload.
    too_early = {
        experiment_id: experiment.spec.first_event_day
        for experiment_id, experiment in registry.experiments.items()
        if experiment.spec.first_event_day < dt.date.fromisoformat(FIRST_DATE)
    }
    for experiment_id, first in sorted(too_early.items()):
        context.log.error(
            f"{experiment_id}: its spec reads days from {first}, before the first day partition "
            f"{FIRST_DATE} (dated from the catalog when the code location loaded); reload the "
            f"code location (Deployment → Reload in the UI) or set EXP_DAGSTER_FIRST_DATE="
            f"{first} or earlier, and it will be registered."
        )
    registered = set(context.instance.get_dynamic_partitions(EXPERIMENT_DIMENSION))
    today = _today()
    ingest: dict[dt.date, dg.RunRequest] = {}
    analyses: list[dg.RunRequest] = []
    facts_done = context.instance.get_materialized_partitions(dg.AssetKey("event_facts"))
    for experiment_id, experiment in sorted(registry.experiments.items()):
        if experiment_id in too_early:
            continue
        if versions.get(experiment_id) == experiment.version and experiment_id in registered:
            continue
        changed = experiment_id in versions
        why = "spec changed" if changed else "new spec"
        wanted = experiment_days_with_data(experiment, landing, today)
        skip = set() if changed else _materialized_at_version(context.instance, experiment, wanted)
        for day in event_days_needed(experiment, landing, today):
            if day.isoformat() not in facts_done and day not in ingest:
                ingest[day] = _ingest_request(
                    day, why, f"event_facts:{day}:{experiment_id}@{experiment.version}"
                )
        todo = [day for day in wanted if day not in skip]
        analyses += [
            _analysis_request(experiment, day, why, f"{experiment_id}@{experiment.version}:{day}")
            for day in todo
        ]
        context.log.info(
            f"{experiment_id} ({why}, version {experiment.version}): {len(todo)} day(s) to "
            f"analyse of {len(wanted)} with data"
        )
        versions[experiment_id] = experiment.version
    keep = set(registry.experiments) | set(registry.invalid_ids)
    removed = [] if "*" in registry.invalid_ids else sorted(registered - keep)
    for experiment_id in removed:
        versions.pop(experiment_id, None)
        context.log.info(f"{experiment_id}: its spec was removed, so its partition is deleted")
    added = sorted(set(registry.experiments) - registered - set(too_early))
    requests = []
    if added:
        requests.append(experiments.build_add_request(added))
    if removed:
        requests.append(experiments.build_delete_request(removed))
    run_requests = [ingest[day] for day in sorted(ingest)] + analyses
    return dg.SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=requests,
        cursor=json.dumps(versions, sort_keys=True),
        skip_reason=None
        if run_requests or requests
        else "; ".join(registry.errors)
        or ("specs waiting for a reload: " + ", ".join(sorted(too_early)) if too_early else "")
        or "no new or changed specs",
    )


# ── landing sensor ───────────────────────────────────────────────────────────────────────────

ALL_DAYS = "*"


def fingerprints(source: LogSource) -> dict[str, str]:
    """A fingerprint of the files of each date folder (or of the whole source, key ``*``, when it
    is not hive-style): names, sizes and modification times, so new and rewritten files show."""

    def digest(files: Iterable[Path]) -> str:
        parts = sorted(f"{p}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files)
        return hashlib.sha1("\n".join(parts).encode()).hexdigest()[:16]

    if not source.path.exists():
        return {}
    if source.is_hive:
        return {day.isoformat(): digest(_files(source, day.isoformat())) for day in source.dates()}
    return {ALL_DAYS: digest(_files(source, ALL_DAYS))}


def _files(source: LogSource, key: str) -> list[Path]:
    day = dt.date.fromisoformat(FIRST_DATE) if key == ALL_DAYS else dt.date.fromisoformat(key)
    return source.files_for(day)[0] if source.path.exists() else []


def _newest_mtime(source: LogSource, keys: Iterable[str]) -> float:
    return max([0.0, *(p.stat().st_mtime for key in keys for p in _files(source, key))])


def _covered_since(instance: dg.DagsterInstance, job: str, since: float) -> set[str]:
    """Partitions of ``job`` with a run created after ``since`` that did not fail: such a run
    reads (or read) the files as they are now, so asking again would only repeat it."""
    runs = instance.get_runs(
        dg.RunsFilter(job_name=job, created_after=dt.datetime.fromtimestamp(since, dt.UTC))
    )
    return {
        run.tags["dagster/partition"]
        for run in runs
        if "dagster/partition" in run.tags and run.status not in _FINISHED_BADLY
    }


@dataclass(frozen=True)
class LandingChanges:
    """Dates whose files are new or changed since the cursor, by source (``*`` = all days)."""

    exposures: tuple[str, ...]
    events: tuple[str, ...]

    def first_exposure_day(self) -> dt.date:
        if ALL_DAYS in self.exposures:
            return dt.date.min
        return min(dt.date.fromisoformat(key) for key in self.exposures)


def landing_runs(
    experiments_by_id: dict[str, ResolvedExperiment],
    landing: LandingZone,
    changes: LandingChanges,
    today: dt.date,
) -> tuple[list[dt.date], dict[str, list[dt.date]]]:
    """The event days to ingest again and, per experiment, the days to analyse again: a changed
    day re-runs itself and every later day of the window (metrics are cumulative)."""
    event_days: set[dt.date] = set()
    analyses: dict[str, list[dt.date]] = {}
    for experiment_id, experiment in sorted(experiments_by_id.items()):
        needed = event_days_needed(experiment, landing, today)
        changed_events = (
            needed
            if ALL_DAYS in changes.events
            else [day for day in needed if day.isoformat() in changes.events]
        )
        event_days.update(changed_events)
        starts = [min(changed_events)] if changed_events else []
        if changes.exposures:
            starts.append(changes.first_exposure_day())
        if not starts:
            continue
        todo = [
            d for d in experiment_days_with_data(experiment, landing, today) if d >= min(starts)
        ]
        if todo:
            analyses[experiment_id] = todo
    return sorted(event_days), analyses


@dg.sensor(
    name="landing_files",
    jobs=[ingest_events_job, analyze_experiment_day_job],
    minimum_interval_seconds=SENSOR_INTERVAL,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def landing_files(
    context: dg.SensorEvaluationContext, catalog: Catalog, landing: LandingZone
) -> dg.SensorResult:
    """Watches the landing zone with a cursor of per-date file fingerprints, so every new or
    rewritten file is seen exactly once. New files for a date request that date's event facts and
    analyses; a late file for an old date re-runs that date and every later day of each registered
    experiment whose window it touches. Partitions that already have a run queued or made after the
    file landed are not asked again (the registry sensor may have asked first)."""
    seen: dict[str, dict[str, str]] = json.loads(context.cursor or "{}")
    now = {"exposures": fingerprints(landing.exposures()), "events": fingerprints(landing.events())}
    changed = {
        kind: tuple(key for key, value in now[kind].items() if seen.get(kind, {}).get(key) != value)
        for kind in now
    }
    changes = LandingChanges(exposures=changed["exposures"], events=changed["events"])
    cursor = json.dumps(now, sort_keys=True)
    if not changes.exposures and not changes.events:
        return dg.SensorResult(cursor=cursor, skip_reason="no new or changed files")
    registered = set(context.instance.get_dynamic_partitions(EXPERIMENT_DIMENSION))
    active = {k: v for k, v in scan_registry(catalog).experiments.items() if k in registered}
    event_days, analyses = landing_runs(active, landing, changes, _today())
    since = max(
        _newest_mtime(landing.exposures(), changes.exposures),
        _newest_mtime(landing.events(), changes.events),
    )
    tick = hashlib.sha1(cursor.encode()).hexdigest()[:12]
    covered = _covered_since(context.instance, ingest_events_job.name, since)
    runs = [
        _ingest_request(day, "new files", f"landing:{tick}:{day}")
        for day in event_days
        if day.isoformat() not in covered
    ]
    covered = _covered_since(context.instance, analyze_experiment_day_job.name, since)
    for experiment_id, todo in analyses.items():
        runs += [
            _analysis_request(active[experiment_id], day, "new files", f"landing:{tick}:{day}")
            for day in todo
            if str(experiment_day_key(experiment_id, day)) not in covered
        ]
    context.log.info(
        f"changed files: exposures {list(changes.exposures)}, events {list(changes.events)}; "
        f"{len(runs)} run(s) requested"
    )
    return dg.SensorResult(
        run_requests=runs,
        cursor=cursor,
        skip_reason=None if runs else "changed files, but every affected partition has a run",
    )


# ── daily schedules ──────────────────────────────────────────────────────────────────────────


def _registered(context: dg.ScheduleEvaluationContext, catalog: Catalog):
    registered = set(context.instance.get_dynamic_partitions(EXPERIMENT_DIMENSION))
    registry = scan_registry(catalog)
    for error in registry.errors:
        context.log.error(error)
    return {k: v for k, v in registry.experiments.items() if k in registered}


def _yesterday(context: dg.ScheduleEvaluationContext) -> dt.date:
    scheduled = context.scheduled_execution_time or dt.datetime.now(dt.UTC)
    return scheduled.astimezone(dt.UTC).date() - dt.timedelta(days=1)


@dg.schedule(
    name="daily_event_facts",
    cron_schedule="0 1 * * *",
    execution_timezone="UTC",
    job=ingest_events_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def daily_event_facts(context: dg.ScheduleEvaluationContext, catalog: Catalog):
    """At 01:00 UTC, yesterday's event facts, when a registered experiment's window or pre-period
    covers yesterday (runs before ``daily_analysis``: the run queue is first in, first out)."""
    yesterday = _yesterday(context)
    needing = [
        experiment_id
        for experiment_id, experiment in _registered(context, catalog).items()
        if experiment.spec.first_event_day <= yesterday <= experiment.spec.end
    ]
    if not needing:
        return dg.SkipReason(f"no registered experiment needs the events of {yesterday}")
    return [_ingest_request(yesterday, "daily schedule", f"daily:{yesterday}")]


@dg.schedule(
    name="daily_analysis",
    cron_schedule="15 1 * * *",
    execution_timezone="UTC",
    job=analyze_experiment_day_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def daily_analysis(context: dg.ScheduleEvaluationContext, catalog: Catalog):
    """At 01:15 UTC, yesterday's analysis for each registered experiment whose window covers
    yesterday: the grid is sparse, so no other experiment gets a run."""
    yesterday = _yesterday(context)
    covering = [
        experiment
        for _, experiment in sorted(_registered(context, catalog).items())
        if experiment.spec.start <= yesterday <= experiment.spec.end
    ]
    if not covering:
        return dg.SkipReason(f"no registered experiment's window covers {yesterday}")
    return [
        _analysis_request(e, yesterday, "daily schedule", f"daily:{e.spec.id}:{yesterday}")
        for e in covering
    ]


# ── declarative automation ───────────────────────────────────────────────────────────────────


def refresh_condition() -> dg.AutomationCondition:
    """Refresh a partition when a same-partition upstream asset was updated by another run.

    It waits for missing or in-progress parents and for their blocking checks, but never for a
    partition that will never exist: it only fires for partitions whose parents were updated,
    which happens inside windows only. ``event_facts`` is ignored, because one day of facts maps to
    that day of every experiment, including those whose window does not cover it; the landing
    sensor re-runs the right days when event files change.
    """
    updated_elsewhere = (
        dg.AutomationCondition.newly_updated()
        & ~dg.AutomationCondition.executed_with_root_target()
        # Runs of the analyze job materialise the whole day, this asset included; Dagster records
        # no asset selection for whole-job runs, so executed_with_root_target misses them.
        & ~dg.AutomationCondition.executed_with_tags(tag_values=WHOLE_DAY_TAG)
    ).with_label("updated by a run that did not also refresh this asset")
    any_deps_updated = (
        dg.AutomationCondition.any_deps_match(
            updated_elsewhere | dg.AutomationCondition.will_be_requested()
        )
        # with the tables the event_facts step writes beside it (quantile_facts, event_times, ...)
        .ignore(dg.AssetSelection.assets("event_facts").required_multi_asset_neighbors())
        .with_label("any_deps_updated")
    )
    return (
        any_deps_updated.since_last_handled()
        & ~dg.AutomationCondition.any_deps_missing()
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
        & dg.AutomationCondition.all_deps_blocking_checks_passed()
    ).with_label("refresh when an upstream partition changes")


def with_automation(assets: Iterable[object]) -> list[object]:
    """The assets, with :func:`refresh_condition` on every experiment × day asset that is not a
    root (so a new downstream asset, e.g. ``report``, gets it without further wiring).

    A step that writes several tables (a multi-asset: ``metric_statistics`` with
    ``metric_outliers``, ...) gets the condition on the asset it is named after, and the others
    follow, since Dagster runs the step whole. Conditions on them too would let one of them
    request the step while the step's own asset still waits for an upstream gate. An input only
    another table of the step reads (``pre_exposure_facts`` for ``novelty_statistics``) is
    written by a step that also updates the step's own inputs (``unit_metrics``), so its changes
    arrive that way."""

    result: list[object] = []
    for asset in assets:
        if (
            isinstance(asset, dg.AssetsDefinition)
            and asset.is_materializable
            and asset.partitions_def == experiment_days
            and asset.node_def.name not in SENSOR_DRIVEN_ASSETS
        ):
            step = asset.node_def.name

            def refreshed(spec: dg.AssetSpec, step: str = step) -> dg.AssetSpec:
                if spec.key.to_user_string() != step:
                    return spec
                return spec.replace_attributes(automation_condition=refresh_condition())

            asset = asset.map_asset_specs(refreshed)
        result.append(asset)
    return result


refresh_downstream = dg.AutomationConditionSensorDefinition(
    "refresh_downstream",
    target=dg.AssetSelection.all(),
    run_tags=WRITER_TAG,
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=SENSOR_INTERVAL,
    # Plain runs (not backfills) carry the writer tag, so the run queue admits one at a time.
    emit_backfills=False,
    description="Evaluates the assets' automation conditions: results, decisions (and reports) "
    "refresh when their upstream partitions change.",
)

sensors = [experiment_registry, landing_files, refresh_downstream]
schedules = [daily_event_facts, daily_analysis]
