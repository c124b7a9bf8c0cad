"""One benchmark contender, in its own process: ``python -m benchmarks.contenders NAME UNITS``.

Prints one JSON line: the contender's wall time (from process start, imports included, since a
user pays them too), its peak resident memory (``ru_maxrss``, DuckDB's memory included: it lives
in the same process) and the four results, so the runner can check that the contenders agree.

Contenders, all on the same files (the 7 pre-period days and the 14 days of the window):

* ``scan``: one DuckDB scan of the four event columns (the floor any engine pays);
* ``exp_dagster``: every partition materialised through Dagster, in process (what ``make demo``
  and ``exp-dagster analyze`` do), on a fresh warehouse and Dagster instance (sqlite storage);
* ``exp_dagster_direct``: the same asset bodies (SQL, gates, statistics, decision, report) invoked
  directly with a built context: the same work without Dagster's runs, event log and storage;
* ``add_day``: days 1–14 materialised (untimed), then day 15 (its events and its analysis),
  timed, against a from-scratch materialisation of all 15 days in the same process;
* ``pandas``: read the event columns into pandas, aggregate per unit, the same four tests;
* ``tea_tasting``: tea-tasting on DuckDB through Ibis (its own virtualenv, see run.py).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

STARTED = time.perf_counter()

from benchmarks.workload import EXPERIMENT_ID, START, Workload, workload  # noqa: E402

WINDOW_END = START + dt.timedelta(days=13)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def scan(work: Workload) -> dict[str, Any]:
    import duckdb

    with duckdb.connect() as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT event), max(event_time), sum(value), "
            "max(length(unit_id)) FROM read_parquet(?)",
            [work.event_files(through=WINDOW_END)],
        ).fetchone()
    return {"rows": row[0] if row else 0}


def _resources(work: Workload, spec: Path, home: Path) -> dict[str, Any]:
    from exp_dagster import home as home_module
    from exp_dagster.resources import Catalog, LandingZone, Warehouse

    return {
        "warehouse": Warehouse(
            database=str(home / "warehouse.duckdb"), **home_module.duckdb_settings()
        ),
        "landing": LandingZone(exposures_path=str(work.exposures), events_path=str(work.events)),
        "catalog": Catalog(
            catalog_dir=str(home / "no-catalog"),
            experiment_files=[str(spec)],
            metrics_file=str(work.metrics),
        ),
    }


def _materialize(
    work: Workload, spec: Path, home: Path, through: dt.date, only_last_day: bool = False
) -> dict[str, float]:
    """Materialise every partition through ``through`` (or only that day's: the daily run).

    Progress goes to stderr (a run at 10M units takes the better part of an hour). Returns the
    seconds each step took, summed over runs, from the instance's event log.
    """
    import dagster as dg

    from exp_dagster.definitions import build_definitions
    from exp_dagster.runner import Plan, materialize, plan

    os.environ["EXP_DAGSTER_REPORTS"] = str(home / "reports")
    resources = _resources(work, spec, home)
    defs = build_definitions(resources)
    experiment = resources["catalog"].experiment(EXPERIMENT_ID)
    (home / "dagster").mkdir(parents=True, exist_ok=True)
    with dg.DagsterInstance.local_temp(str(home / "dagster")) as instance:
        the_plan = plan(experiment, resources["landing"].events(), through)
        if only_last_day:
            the_plan = Plan(event_days=(through,), experiment_days=(through,))
        started = time.perf_counter()
        materialize(
            defs,
            instance,
            experiment,
            the_plan,
            progress=lambda line: print(
                f"{time.perf_counter() - started:7.0f} s {line}", file=sys.stderr, flush=True
            ),
        )
        return _step_seconds(instance)


def _step_seconds(instance: Any) -> dict[str, float]:
    """Seconds per step (asset), summed over every run of ``instance``."""
    import dagster as dg

    seconds: dict[str, float] = {}
    for record in instance.get_run_records():
        for entry in instance.all_logs(
            record.dagster_run.run_id, of_type=dg.DagsterEventType.STEP_SUCCESS
        ):
            event = entry.dagster_event
            step = event.step_key or "?"
            duration = event.event_specific_data.duration_ms / 1000.0
            seconds[step] = round(seconds.get(step, 0.0) + duration, 2)
    return dict(sorted(seconds.items(), key=lambda item: -item[1]))


def _four_results(database: Path, day: dt.date) -> dict[str, Any]:
    import duckdb

    with duckdb.connect(str(database), read_only=True) as conn:
        rows = conn.execute(
            "SELECT metric, abs_effect, abs_ci_low, abs_ci_high FROM results "
            "WHERE experiment_id = ? AND as_of_date = ? AND segment = 'all' ORDER BY metric",
            [EXPERIMENT_ID, day],
        ).fetchall()
    return {metric: [effect, low, high] for metric, effect, low, high in rows}


def exp_dagster(work: Workload) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-exp-") as tmp:
        home = Path(tmp)
        steps = _materialize(work, work.spec14, home, WINDOW_END)
        return {**_four_results(home / "warehouse.duckdb", WINDOW_END), "seconds_by_step": steps}


def exp_dagster_direct(work: Workload) -> dict[str, Any]:
    """The asset bodies in the order a run executes them, without a Dagster run.

    The steps are the project's asset list (already in dependency order), each invoked with the
    resources it declares: a new asset is benchmarked without touching this file.
    """
    import dagster as dg

    from assets import ALL_ASSETS
    from exp_dagster.partitions import days, experiment_day_key, experiment_days
    from exp_dagster.runner import plan

    runnable = [a for a in ALL_ASSETS if isinstance(a, dg.AssetsDefinition) and a.is_executable]
    by_day = [a for a in runnable if a.partitions_def == days]
    by_experiment_day = [a for a in runnable if a.partitions_def == experiment_days]
    with tempfile.TemporaryDirectory(prefix="bench-direct-") as tmp:
        home = Path(tmp)
        os.environ["EXP_DAGSTER_REPORTS"] = str(home / "reports")
        resources = _resources(work, work.spec14, home)
        experiment = resources["catalog"].experiment(EXPERIMENT_ID)
        the_plan = plan(experiment, resources["landing"].events(), WINDOW_END)
        seconds: dict[str, float] = {}
        with dg.DagsterInstance.ephemeral() as instance:

            def run(steps: list[dg.AssetsDefinition], key: str | dg.MultiPartitionKey) -> None:
                for asset in steps:
                    context = dg.build_asset_context(partition_key=key, instance=instance)
                    started = time.perf_counter()
                    needs = asset.required_resource_keys & resources.keys()  # not the io_manager
                    asset(context, **{n: resources[n] for n in needs})
                    name = asset.node_def.name  # the step (a multi-asset writes several tables)
                    seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - started

            for day in the_plan.event_days:
                run(by_day, day.isoformat())
            for day in the_plan.experiment_days:
                run(by_experiment_day, experiment_day_key(EXPERIMENT_ID, day))
        outcome = _four_results(home / "warehouse.duckdb", WINDOW_END)
        return {**outcome, "seconds_by_asset": {k: round(v, 2) for k, v in seconds.items()}}


def add_day(work: Workload) -> dict[str, Any]:
    last = START + dt.timedelta(days=14)
    with tempfile.TemporaryDirectory(prefix="bench-add-") as tmp:
        full_home, add_home = Path(tmp) / "full", Path(tmp) / "add"
        started = time.perf_counter()
        _materialize(work, work.spec15, full_home, last)
        full = time.perf_counter() - started
        _materialize(work, work.spec15, add_home, last - dt.timedelta(days=1))
        started = time.perf_counter()
        # the daily run of day 15: its events, then its analysis (days 1-14 are in place)
        _materialize(work, work.spec15, add_home, last, only_last_day=True)
        added = time.perf_counter() - started
        same = _four_results(full_home / "warehouse.duckdb", last) == _four_results(
            add_home / "warehouse.duckdb", last
        )
    return {"full_seconds": full, "add_day_seconds": added, "identical": same}


def pandas_baseline(work: Workload) -> dict[str, Any]:
    import numpy as np
    import pandas as pd

    from exp_dagster.stats import (
        CovariateMoments,
        QuantileArm,
        RatioMoments,
        cuped_test,
        quantile_test,
        ratio_test,
        two_proportion_test,
    )

    exposures = pd.read_parquet(
        work.exposure_files(through=WINDOW_END), columns=["unit_id", "variant", "exposed_at"]
    )
    first = exposures.sort_values("exposed_at").groupby("unit_id", sort=False).first()
    events = pd.read_parquet(
        work.event_files(through=WINDOW_END), columns=["unit_id", "event_time", "event", "value"]
    )
    events["day"] = events["event_time"].dt.floor("D").dt.tz_localize(None)
    events = events.join(first[["variant", "exposed_at"]], on="unit_id", how="inner")
    exposure_day = events["exposed_at"].dt.floor("D").dt.tz_localize(None)
    post = events[events["day"] >= exposure_day]
    pre = events[
        (events["day"] < exposure_day) & (events["day"] >= exposure_day - pd.Timedelta(days=7))
    ]
    per_unit = post.pivot_table(
        index="unit_id", columns="event", values="value", aggfunc="sum", fill_value=0.0
    )
    clicks = post[post["event"] == "click"].groupby("unit_id").size()
    purchases = post[post["event"] == "purchase"].groupby("unit_id").size()
    pre_watch = pre[pre["event"] == "watch_seconds"].groupby("unit_id")["value"].sum()
    units = first[["variant"]].copy()
    units["impressions"] = per_unit.get("impression", 0.0).reindex(units.index, fill_value=0.0)
    units["clicks"] = clicks.reindex(units.index, fill_value=0).astype(float)
    units["watch"] = per_unit.get("watch_seconds", 0.0).reindex(units.index, fill_value=0.0)
    units["pre_watch"] = pre_watch.reindex(units.index, fill_value=0.0)
    units["converted"] = (purchases.reindex(units.index, fill_value=0) > 0).astype(float)
    arms = {name: group for name, group in units.groupby("variant")}
    control, treatment = arms["control"], arms["treatment"]

    def ratio(g: pd.DataFrame) -> RatioMoments:
        return RatioMoments.from_values(y=g["clicks"].to_numpy(), x=g["impressions"].to_numpy())

    def cuped(g: pd.DataFrame) -> CovariateMoments:
        return CovariateMoments.from_values(y=g["watch"].to_numpy(), c=g["pre_watch"].to_numpy())

    latency = post[post["event"] == "latency_ms"]

    def quantile_arm(name: str) -> QuantileArm:
        rows = latency[latency["variant"] == name]
        grouped = rows.groupby("unit_id")["value"].apply(np.asarray)
        return QuantileArm.from_values(list(grouped), level=0.95)

    results = {
        "ctr": ratio_test(ratio(control), ratio(treatment)),
        "watch_time": cuped_test(cuped(control), cuped(treatment)),
        "conversion": two_proportion_test(
            int(control["converted"].sum()),
            len(control),
            int(treatment["converted"].sum()),
            len(treatment),
        ),
        "latency_p95": quantile_test(
            quantile_arm("control"), quantile_arm("treatment"), level=0.95
        ),
    }
    return {k: [v.abs_effect, v.abs_ci_low, v.abs_ci_high] for k, v in sorted(results.items())}


CONTENDERS = {
    "scan": scan,
    "exp_dagster": exp_dagster,
    "exp_dagster_direct": exp_dagster_direct,
    "add_day": add_day,
    "pandas": pandas_baseline,
}


def main() -> int:
    name, units = sys.argv[1], int(sys.argv[2])
    work = workload(units)
    before = time.perf_counter()
    outcome = CONTENDERS[name](work)
    print(
        json.dumps(
            {
                "contender": name,
                "units": units,
                "seconds": time.perf_counter() - STARTED,
                "work_seconds": time.perf_counter() - before,
                "peak_rss_mb": peak_rss_mb(),
                "outcome": outcome,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
