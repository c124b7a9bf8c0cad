"""Seeded logs of a bandit-run experiment, served in a closed loop, with known truth.

Each day ``n_units / days`` new users arrive and are each exposed once; each user's variant is
drawn from the day's split, and a user converts (one ``purchase`` event minutes after the
exposure, the same day) with its variant's conversion rate, constant over the days. The split
is the serving system's: the planned ``weights`` during burn-in, then each day the library's
allocation (:func:`exp_dagster.stats.bandit_allocation`) from the simulated units through the
day before, with the arguments and seed the ``bandit_allocations`` asset uses
(:mod:`exp_dagster.allocation`). So the asset, reading these logs, writes the splits that were
served, and the sample-ratio test per allocation day passes.

```
<out>/exposures/date=YYYY-MM-DD/part-00000.parquet
<out>/events/date=YYYY-MM-DD/part-00000.parquet
<out>/truth.json      bandit:<variant>:conversion rates, bandit_split:<day>:<variant> splits
```
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from exp_dagster.simulate import SimulationTruth
from exp_dagster.stats.bandit import (
    DEFAULT_DRAWS,
    DEFAULT_TOP_TWO_BETA,
    allocation_seed,
    bandit_allocation,
    proportion_posterior,
)

_US_PER_SECOND = 1_000_000
# Exposures in the first ten hours of the UTC day; a purchase 1 to 60 minutes later.
_EXPOSURE_SPAN_S = 10 * 3600
_PURCHASE_DELAY_S = (60, 3600)


@dataclass(frozen=True)
class BanditSimulationConfig:
    """What to simulate.

    Attributes:
        experiment_id: written to every exposure row; also seeds the allocations.
        salt: the spec's hash salt (unused: the bandit draws each unit's variant from the day's
            split, as a serving system following it does).
        weights: ``(variant, weight)`` pairs, the planned split used during burn-in; the first
            variant is the control.
        conversion: ``(variant, rate)`` pairs in ``weights``' order: each arm's true conversion.
        n_units: users over the window, the same number each day.
        start: the first day (UTC).
        days: the window's length in days.
        pre_days: days before ``start`` (none: users arrive with the window; kept at 0).
        seed: the root of every random draw.
        fmt: ``parquet`` only.
        algorithm: the spec's ``bandit.algorithm``.
        floor: the spec's ``bandit.floor``.
        burn_in_days: the spec's ``bandit.burn_in_days``.
        top_two_beta: the spec's ``bandit.top_two_beta``.
        ramp: none (a bandit is not ramped); kept for the showcases' common checks.
        launches: none.
    """

    experiment_id: str
    salt: str
    weights: tuple[tuple[str, float], ...]
    conversion: tuple[tuple[str, float], ...]
    n_units: int
    start: dt.date
    days: int
    pre_days: int = 0
    seed: int = 0
    fmt: Literal["parquet"] = "parquet"
    algorithm: Literal["thompson", "top_two_thompson"] = "thompson"
    floor: float = 0.01
    burn_in_days: int = 1
    top_two_beta: float = DEFAULT_TOP_TWO_BETA
    ramp: tuple[()] = ()
    launches: tuple[()] = ()

    def __post_init__(self) -> None:
        problems: list[str] = []
        names = [name for name, _ in self.weights]
        if len(names) < 2 or abs(sum(w for _, w in self.weights) - 1.0) > 1e-9:
            problems.append("weights needs at least two variants, summing to 1")
        if [name for name, _ in self.conversion] != names:
            problems.append(f"conversion must give a rate for each of {names}, in that order")
        if not all(0 < rate < 1 for _, rate in self.conversion):
            problems.append("conversion rates must be in (0, 1)")
        if self.days < 1 or self.n_units < self.days or self.pre_days != 0:
            problems.append("need days >= 1, at least one unit a day, and pre_days 0")
        if self.fmt != "parquet":
            problems.append(f"the bandit simulation writes parquet only, not {self.fmt!r}")
        if problems:
            raise ValueError("Invalid BanditSimulationConfig: " + "; ".join(problems) + ".")

    @property
    def end(self) -> dt.date:
        """The last day of the window, inclusive."""
        return self.start + dt.timedelta(days=self.days - 1)


def served_split(
    config: BanditSimulationConfig, day: dt.date, units: Sequence[tuple[int, int]]
) -> tuple[float, ...]:
    """The split served on ``day``: the planned one during burn-in, else the allocation written
    on the day before from ``units`` (each arm's units and conversions through that day)."""
    planned = tuple(w for _, w in config.weights)
    if (day - config.start).days < config.burn_in_days:
        return planned
    names = [name for name, _ in config.weights]
    allocation = bandit_allocation(
        names,
        [proportion_posterior(n, converted) for n, converted in units],
        algorithm=config.algorithm,
        floor=config.floor,
        top_two_beta=config.top_two_beta,
        draws=DEFAULT_DRAWS,
        seed=allocation_seed(config.experiment_id, day - dt.timedelta(days=1)),
        higher_is_better=True,
    )
    return tuple(float(w) for w in allocation.weights)


def simulate_bandit(
    out_dir: Path,
    config: BanditSimulationConfig,
    *,
    progress: Callable[[str], None] | None = None,
) -> SimulationTruth:
    """Write the closed loop's exposure and event logs and ``truth.json``.

    Returns:
        The truth: each arm's conversion rate and relative lift over the control
        (``estimands``), the splits served, and counts.
    """
    out_dir = Path(out_dir)
    names = [name for name, _ in config.weights]
    rates = np.array([rate for _, rate in config.conversion])
    per_day = config.n_units // config.days
    seen = [(0, 0) for _ in names]
    estimands: dict[str, float] = {}
    counts: dict[str, int] = {"exposures": 0, "events": 0}
    for offset in range(config.days):
        day = config.start + dt.timedelta(days=offset)
        split = served_split(config, day, seen)
        rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(offset,)))
        arm = rng.choice(len(names), size=per_day, p=np.asarray(split) / math.fsum(split))
        converted = rng.random(per_day) < rates[arm]
        midnight = (day - dt.date(1970, 1, 1)).days * 86_400 * _US_PER_SECOND
        exposed_at = midnight + rng.integers(0, _EXPOSURE_SPAN_S, per_day) * _US_PER_SECOND
        delay = rng.integers(*_PURCHASE_DELAY_S, per_day) * _US_PER_SECOND
        order_value = np.round(np.exp(rng.normal(3.0, 0.5, per_day)), 2)
        ids = [f"u{offset * per_day + i:07d}" for i in range(per_day)]
        exposures = pa.table(
            {
                "experiment_id": pa.array([config.experiment_id] * per_day, type=pa.string()),
                "unit_id": pa.array(ids, type=pa.string()),
                "variant": pa.array([names[a] for a in arm], type=pa.string()),
                "exposed_at": pa.array(exposed_at, type=pa.timestamp("us", tz="UTC")),
            }
        )
        buyers = np.flatnonzero(converted)
        events = pa.table(
            {
                "unit_id": pa.array([ids[i] for i in buyers], type=pa.string()),
                "event_time": pa.array(
                    exposed_at[buyers] + delay[buyers], type=pa.timestamp("us", tz="UTC")
                ),
                "event": pa.array(["purchase"] * buyers.size, type=pa.string()),
                "value": pa.array(order_value[buyers], type=pa.float64()),
            }
        )
        for kind, table in (("exposures", exposures), ("events", events)):
            folder = out_dir / kind / f"date={day.isoformat()}"
            folder.mkdir(parents=True, exist_ok=True)
            for old in folder.glob("part-*"):
                old.unlink()
            pq.write_table(table, folder / "part-00000.parquet", compression="zstd")
            counts[kind] += table.num_rows
        for index, name in enumerate(names):
            mine = arm == index
            n, bought = seen[index]
            seen[index] = (n + int(mine.sum()), bought + int(converted[mine].sum()))
            estimands[f"bandit_split:{day.isoformat()}:{name}"] = split[index]
        if progress is not None:
            progress(
                f"{day.isoformat()}: split "
                + ", ".join(f"{n} {w:.3f}" for n, w in zip(names, split, strict=True))
            )
    control = rates[0]
    for name, rate in zip(names, rates, strict=True):
        estimands[f"bandit:{name}:conversion"] = float(rate)
        estimands[f"bandit_lift:{name}:conversion"] = float(rate / control - 1.0)
    for index, name in enumerate(names):
        counts[f"exposed_units_{name}"] = seen[index][0]
    truth = SimulationTruth(
        experiment_id=config.experiment_id,
        start=config.start,
        end=config.end,
        relative_effects={},
        segment_relative_effects={},
        counts=dict(sorted(counts.items())),
        estimands=estimands,
    )
    (out_dir / "truth.json").write_text(
        json.dumps(truth.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    return truth
