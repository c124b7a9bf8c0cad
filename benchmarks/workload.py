"""The benchmark workload: the simulator's ranker experiment at N units, cached on disk.

N units randomised 50/50, a 7-day pre-period and a 14-day window (plus a 15th day for the
add-a-day measurement), about 40 events per unit in long format (one ``impression`` row per page,
its value the items shown; ``click``, ``watch_seconds``, ``purchase``, ``latency_ms``) as Parquet
in ``date=`` folders. Four metrics: CTR (ratio, delta method), watch time per unit (mean, CUPED on
the pre-period), conversion (proportion, CUPED) and p95 latency (quantile).

The data is generated once per (N, seed) into ``$EXP_DAGSTER_BENCH_DIR`` (default
``benchmarks/.data``) and reused; a ``done`` marker makes an interrupted generation start over.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(os.environ.get("EXP_DAGSTER_BENCH_DIR", Path(__file__).parent / ".data"))
EXPERIMENT_ID = "bench_ranker"
START = dt.date(2026, 10, 1)
DAYS = 15  # 14 analysed in the full run, the 15th added afterwards
PRE_DAYS = 7

METRICS_YAML = """\
metrics:
  ctr:
    description: Click-through rate (clicks / impressions), delta method.
    type: ratio
    numerator: click
    denominator: impression
    direction: increase
  watch_time:
    description: Seconds watched per user, CUPED on the pre-period.
    type: mean
    event: watch_seconds
    aggregate: sum
    direction: increase
  conversion:
    description: Share of users with a purchase.
    type: proportion
    event: purchase
    direction: increase
  latency_p95:
    description: 95th percentile of ranking latency, in milliseconds.
    type: quantile
    event: latency_ms
    level: 0.95
    direction: decrease
"""


def spec_yaml(days: int) -> str:
    """The experiment spec, its window ``days`` long."""
    end = START + dt.timedelta(days=days - 1)
    return f"""\
id: {EXPERIMENT_ID}
description: Benchmark workload (benchmarks/workload.py).
owner: benchmarks
unit: user
hash_salt: {EXPERIMENT_ID}-salt
variants:
  - {{name: control, weight: 0.5, control: true}}
  - {{name: treatment, weight: 0.5}}
start: {START.isoformat()}
end: {end.isoformat()}
pre_period_days: {PRE_DAYS}
metrics:
  primary: ctr
  secondary: [watch_time, conversion]
  guardrails:
    - {{metric: latency_p95, margin: 0.05, margin_type: relative}}
segments: [platform]
alpha: 0.05
power: 0.8
mde: 0.02
srm_alpha: 0.001
"""


@dataclass(frozen=True)
class Workload:
    """Paths of one generated workload.

    Attributes:
        root: its folder.
        exposures: the exposure logs (``date=`` folders).
        events: the event logs (``date=`` folders).
        metrics: the metric catalog of the four metrics.
        spec14: the experiment spec with a 14-day window (the full analysis).
        spec15: the same experiment with a 15-day window (adding a day).
    """

    root: Path

    @property
    def exposures(self) -> Path:
        return self.root / "exposures"

    @property
    def events(self) -> Path:
        return self.root / "events"

    @property
    def catalog(self) -> Path:
        return self.root / "catalog"

    @property
    def metrics(self) -> Path:
        return self.catalog / "metrics.yaml"

    @property
    def spec14(self) -> Path:
        return self.root / "spec14" / f"{EXPERIMENT_ID}.yaml"

    @property
    def spec15(self) -> Path:
        return self.root / "spec15" / f"{EXPERIMENT_ID}.yaml"

    def event_files(self, through: dt.date | None = None) -> list[str]:
        """The event Parquet files, optionally only the days through ``through``."""
        return _day_files(self.events, through)

    def exposure_files(self, through: dt.date | None = None) -> list[str]:
        """The exposure Parquet files, optionally only the days through ``through``."""
        return _day_files(self.exposures, through)


def _day_files(root: Path, through: dt.date | None) -> list[str]:
    files = []
    for folder in sorted(root.glob("date=*")):
        day = dt.date.fromisoformat(folder.name.removeprefix("date="))
        if through is None or day <= through:
            files.extend(str(p) for p in sorted(folder.glob("*.parquet")))
    return files


def workload(n_units: int, seed: int = 11) -> Workload:
    """The workload of ``n_units`` units, generated on first use."""
    root = BENCH_DIR / f"units_{n_units}_seed_{seed}"
    done = root / "done"
    if not done.exists():
        _generate(root, n_units, seed)
        done.write_text("ok\n")
    return Workload(root)


def _generate(root: Path, n_units: int, seed: int) -> None:
    from exp_dagster.simulate import SimulationConfig, simulate
    from exp_dagster.simulate_models import ModelLogSizes

    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    started = time.perf_counter()
    print(f"generating {n_units:,} units into {root} (once; cached) …", file=sys.stderr)
    config = SimulationConfig(
        experiment_id=EXPERIMENT_ID,
        salt=f"{EXPERIMENT_ID}-salt",
        n_units=n_units,
        start=START,
        days=DAYS,
        pre_days=PRE_DAYS,
        seed=seed,
        messy=False,
        impression_rows="page",
        model_logs=ModelLogSizes(ranking_requests=0, predictions=0, interleaved_requests=0),
    )
    simulate(root, config, progress=lambda line: print(line, file=sys.stderr))
    (root / "catalog").mkdir()
    (root / "catalog" / "metrics.yaml").write_text(METRICS_YAML)
    for days, folder in ((DAYS - 1, "spec14"), (DAYS, "spec15")):
        (root / folder).mkdir()
        (root / folder / f"{EXPERIMENT_ID}.yaml").write_text(spec_yaml(days))
        (root / folder / "metrics.yaml").write_text(METRICS_YAML)
    print(f"generated in {time.perf_counter() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    target = workload(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
    print(target.root)
