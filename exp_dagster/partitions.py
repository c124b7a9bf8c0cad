"""The partition grid: experiment (dynamic) × day, and day alone for the shared event facts.

Experiments are dynamic partitions because specs are data: the registry adds one per YAML file,
with no code change or redeploy. The day dimension starts at the first day any catalog experiment
reads, its pre-period included (:func:`first_date`), so the UI's partition bars start where the
data does instead of being mostly "missing"; it runs through today (``end_offset=1``) so a day can
be analysed while it is still being logged. The cross-product is sparse: an experiment only has
data on the days of its window, and only those are ever requested (docs/architecture.md,
decision 8).
"""

from __future__ import annotations

import datetime as dt

import dagster as dg

from exp_dagster import home
from exp_dagster.spec import earliest_event_day


def first_date() -> str:
    """The first day partition (ISO text): ``EXP_DAGSTER_FIRST_DATE`` when set; else the first
    day any spec in the catalog reads (``start - pre_period_days``); else 2025-01-01.

    Read once, when the code location loads: a spec added later that reads earlier days needs a
    reload of the code location (the registry sensor says so) or ``EXP_DAGSTER_FIRST_DATE``.
    """
    configured = home.first_date()
    if configured is not None:
        return configured
    earliest = earliest_event_day(home.catalog_dir() / "experiments")
    return earliest.isoformat() if earliest is not None else home.DEFAULT_FIRST_DATE


FIRST_DATE = first_date()
experiments = dg.DynamicPartitionsDefinition(name="experiment")
days = dg.DailyPartitionsDefinition(start_date=FIRST_DATE, end_offset=1)
experiment_days = dg.MultiPartitionsDefinition({"date": days, "experiment": experiments})

# exp×day assets depend on the shared daily event facts of the same date; Dagster infers that
# mapping from the shared "date" dimension. They also read earlier days (cumulative metrics,
# pre-periods), which any daily flow or backfill in date order has materialised before them.


def analysable_days() -> tuple[dt.date, dt.date]:
    """The first and last day a daily partition can have: ``FIRST_DATE`` through tomorrow (UTC;
    a day ahead for clocks that run fast). A row of a single log file dated outside them would
    belong to no run, so it is quarantined on the file's first day instead."""
    tomorrow = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)
    return dt.date.fromisoformat(FIRST_DATE), tomorrow


def experiment_day_key(experiment_id: str, day: dt.date) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"experiment": experiment_id, "date": day.isoformat()})


def parse_experiment_day(context: dg.AssetExecutionContext) -> tuple[str, dt.date]:
    """The (experiment id, day) of the partition being materialised."""
    key = context.partition_key
    if not isinstance(key, dg.MultiPartitionKey):
        raise dg.Failure(f"expected an experiment × date partition key, got {key!r}")
    by_dimension = key.keys_by_dimension
    return by_dimension["experiment"], dt.date.fromisoformat(by_dimension["date"])
