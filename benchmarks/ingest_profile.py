"""Time the assets statement by statement: ``python -m benchmarks.ingest_profile UNITS [--all]``.

Materialises ``event_facts`` (21 days), then ``exposures`` and ``pre_period_covariates`` (14
days) of the benchmark workload (``benchmarks/workload.py``), or with ``--all`` every step of
every day, invoking the asset bodies directly as ``contenders.exp_dagster_direct`` does, on a
fresh warehouse. Every statement the assets send
to DuckDB is timed, in wall and in CPU seconds of the whole process (DuckDB's threads included),
and summed by asset and by statement. CPU time is the figure to compare on a shared machine:
other work stretches the wall time far more than it stretches the CPU time.

Prints, per asset, the wall and CPU seconds of the asset bodies and of their statements, then
the ``--top`` statements by CPU time.
"""

from __future__ import annotations

import argparse
import collections
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

INGEST_ASSETS = ("event_facts", "exposures", "pre_period_covariates")


class _Clock:
    """Seconds of wall and CPU time, summed by key."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = collections.defaultdict(float)
        self.cpu: dict[str, float] = collections.defaultdict(float)
        self.calls: dict[str, int] = collections.defaultdict(int)

    @contextmanager
    def timing(self, *keys: str) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            for key in keys:
                self.wall[key] += time.perf_counter() - wall
                self.cpu[key] += time.process_time() - cpu
                self.calls[key] += 1


class _TimedConnection:
    """A DuckDB connection whose ``execute`` is timed under the running asset's name."""

    def __init__(self, conn: Any, clock: _Clock, asset: list[str]) -> None:
        self._conn, self._clock, self._asset = conn, clock, asset

    def execute(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        statement = " ".join(str(sql).split())[:90]
        asset = self._asset[0]
        with self._clock.timing(f"{asset} | {statement}", f"{asset} (statements)"):
            result = self._conn.execute(sql, *args, **kwargs)
        return self if result is self._conn else result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def profile(units: int, every_step: bool = False) -> tuple[_Clock, tuple[str, ...]]:
    import dagster as dg

    from assets import ALL_ASSETS
    from benchmarks.contenders import EXPERIMENT_ID, WINDOW_END, _resources
    from benchmarks.workload import workload
    from exp_dagster.partitions import days as day_partitions
    from exp_dagster.partitions import experiment_day_key
    from exp_dagster.resources import Warehouse
    from exp_dagster.runner import plan

    work = workload(units)
    runnable = [a for a in ALL_ASSETS if isinstance(a, dg.AssetsDefinition) and a.is_executable]
    assets = {a.node_def.name: a for a in runnable}  # by step (a multi-asset writes several)
    by_day = [
        name
        for name, a in assets.items()
        if a.partitions_def == day_partitions and (every_step or name in INGEST_ASSETS)
    ]
    by_experiment_day = [
        name
        for name, a in assets.items()
        if a.partitions_def != day_partitions
        and a.partitions_def is not None
        and (every_step or name in INGEST_ASSETS)
    ]
    clock, running = _Clock(), ["?"]
    connect = Warehouse.connect

    @contextmanager
    def timed_connect(self: Warehouse) -> Iterator[Any]:
        with connect(self) as conn:
            yield _TimedConnection(conn, clock, running)

    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        resources = _resources(work, work.spec14, Path(tmp))
        experiment = resources["catalog"].experiment(EXPERIMENT_ID)
        the_plan = plan(experiment, resources["landing"].events(), WINDOW_END)
        Warehouse.connect = timed_connect  # type: ignore[method-assign]
        try:
            with dg.DagsterInstance.ephemeral() as instance:

                def run(name: str, key: str | dg.MultiPartitionKey) -> None:
                    asset, running[0] = assets[name], name
                    context = dg.build_asset_context(partition_key=key, instance=instance)
                    needs = asset.required_resource_keys & resources.keys()
                    with clock.timing(name):
                        asset(context, **{n: resources[n] for n in needs})

                for day in the_plan.event_days:
                    for name in by_day:
                        run(name, day.isoformat())
                for day in the_plan.experiment_days:
                    key = experiment_day_key(EXPERIMENT_ID, day)
                    for name in by_experiment_day:
                        run(name, key)
        finally:
            Warehouse.connect = connect  # type: ignore[method-assign]
    return clock, (*by_day, *by_experiment_day)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("units", type=int)
    parser.add_argument("--top", type=int, default=15, help="statements to list")
    parser.add_argument("--all", action="store_true", help="every step, not only the ingest")
    args = parser.parse_args()
    clock, steps = profile(args.units, every_step=args.all)
    print(f"{'seconds':>34}  {'wall':>7}  {'cpu':>7}")
    for asset in steps:
        for key in (asset, f"{asset} (statements)"):
            print(f"{key:>34}  {clock.wall[key]:7.2f}  {clock.cpu[key]:7.2f}")
    statements = [k for k in clock.cpu if " | " in k]
    print(f"\n{'wall':>7}  {'cpu':>7}  calls  statement")
    for key in sorted(statements, key=lambda k: -clock.cpu[k])[: args.top]:
        print(f"{clock.wall[key]:7.2f}  {clock.cpu[key]:7.2f}  {clock.calls[key]:5d}  {key}")


if __name__ == "__main__":
    main()
