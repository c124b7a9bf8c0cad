"""Seeded, realistic logs of a ranking-model A/B test with known true effects.

The simulator writes exposure and event logs in the project's input contract (see
docs/input.md) for a test of a new ranker ("treatment") against the production ranker ("control"),
plus ``truth.json``, the effects the analysis must find:

```
<out>/exposures/date=YYYY-MM-DD/part-00000.parquet   one part file per chunk of units with rows
<out>/events/date=YYYY-MM-DD/part-00000.parquet      (.csv / .jsonl with ``fmt``)
<out>/ranking/, predictions/, interleaving/date=…/…      model logs (exp_dagster.simulate_models)
<out>/truth.json
```

The generating process, per unit (a user):

- persistent latent traits: platform, country, new-user flag, a lognormal activity level, and
  propensities (click, watch, purchase, order value, network latency) that vary by segment;
- each day the unit is active with a probability that grows with its activity (new users have no
  history before the experiment starts); an active day is one session of ``1 + Poisson`` ranking
  requests, each logging one ``latency_ms`` row (lognormal) and about ten ``impression`` rows;
  clicks are ``Binomial(impressions, p_click)``, each click is watched with the unit's watch
  probability (``watch_seconds`` rows, lognormal durations), and ``purchase`` rows are rare;
- the ``pre_days`` before ``start`` follow the same process without treatment, so pre-period
  metrics predict in-experiment metrics (CUPED has variance to remove);
- an eligible unit is exposed at the first moment of its session on every active day inside the
  window ``[start, start + days)``; its variant is the deterministic hash assignment
  (:func:`exp_dagster.assignment.assign_variant`). All of a day's events come after that day's
  ``exposed_at``, so a unit is treated from its first exposure on and never before.

The first variant of ``weights`` is the control; every other variant gets ``effects``. True effects
are population truths computed from the generating parameters, never from sampled outcomes: watch
time, conversion, revenue and latency move by construction (multiplicatively on each unit's
expectation, hence on any mixture of units); CTR's overall and per-segment lifts are the
click-weighted mixtures of the per-platform lifts over the exposed units' expected impressions.

With ``messy=True`` the logs carry the faults a real pipeline sees (counted in ``truth.counts``):
about 1 % of exposure rows logged twice, identically; ineligible units that are active but never
exposed; and a day of late activity after the window ends.

The output is deterministic: the same configuration gives byte-identical files. Every chunk of
units and every (chunk, day) draws from its own ``numpy.random.SeedSequence`` child.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from exp_dagster.assignment import bucket_upper_bounds, hash_bucket
from exp_dagster.simulate_models import LOG_KINDS, ModelLogSizes, model_truth, simulate_model_logs

Format = Literal["parquet", "csv", "jsonl"]
ImpressionRows = Literal["item", "page"]

EVENTS: tuple[str, ...] = ("impression", "click", "watch_seconds", "purchase", "latency_ms")
_IMPRESSION, _CLICK, _WATCH, _PURCHASE, _LATENCY = range(len(EVENTS))

# Segments of the simulated population: (value, share of units).
PLATFORMS: tuple[tuple[str, float], ...] = (("ios", 0.35), ("android", 0.31), ("web", 0.34))
COUNTRIES: tuple[tuple[str, float], ...] = (
    ("US", 0.34),
    ("GB", 0.10),
    ("DE", 0.10),
    ("FR", 0.08),
    ("BR", 0.18),
    ("IN", 0.20),
)
NEW_USER_SHARE = 0.15

# Per-platform traits, in PLATFORMS order.
_PLATFORM_ACTIVITY = np.array([1.0, 0.95, 0.85])
_PLATFORM_CLICK_RATE = np.array([0.055, 0.050, 0.045])
_PLATFORM_LATENCY_MEDIAN_MS = np.array([120.0, 150.0, 185.0])
_PLATFORM_PURCHASE = np.array([1.15, 0.85, 1.0])
# Per-country traits, in COUNTRIES order.
_COUNTRY_PURCHASE = np.array([1.2, 1.1, 1.0, 1.0, 0.8, 0.7])
_COUNTRY_ORDER_VALUE = np.array([32.0, 28.0, 27.0, 26.0, 14.0, 9.0])

_US_PER_SECOND = 1_000_000
_US_PER_DAY = 86_400 * _US_PER_SECOND
# Sessions start early enough in the UTC day to end within it (they last minutes, not hours).
_SESSION_START_SPAN = 0.85
_FIRST_REQUEST_DELAY_MEAN_S = 0.2
_REQUEST_GAP_MEAN_S = 90.0
_CLICK_DELAY_MEAN_S = 15.0
# A feed page shows 6 + Binomial(8, 1/2) items: ten on average.
_IMPRESSIONS_MIN, _IMPRESSIONS_SPREAD = 6, 8
_IMPRESSIONS_PER_REQUEST = _IMPRESSIONS_MIN + _IMPRESSIONS_SPREAD / 2
# Extra purchases of a converting unit, on top of its first, over one period.
_EXTRA_PURCHASES_MEAN = 0.35
# Per-unit window conversion probability stays below this even when treated.
_MAX_CONVERSION = 0.9
_WEEKDAY_ACTIVITY = np.array([1.0, 0.97, 0.97, 1.0, 1.05, 1.2, 1.15])  # Monday first

_COPY_SQL: dict[str, str] = {
    "csv": "COPY simulated_rows TO $path (FORMAT csv, HEADER true)",
    "jsonl": "COPY simulated_rows TO $path (FORMAT json)",
}


@dataclass(frozen=True)
class TreatmentEffects:
    """Relative true effects of every non-control variant.

    Attributes:
        ctr_by_platform: relative lift of each platform's click probability per impression.
            The overall CTR lift is their mixture (about +4 % with the defaults).
        watch_time: relative lift of expected watch seconds per unit. Holds by construction: the
            duration of a treated watch is scaled by ``(1 + watch_time) / (1 + ctr lift)``, which
            cancels the extra watches that follow the extra clicks.
        conversion: relative lift of each unit's probability of at least one purchase in the window.
        revenue_per_purchase: relative lift of order values; revenue per unit moves by
            ``(1 + conversion) * (1 + revenue_per_purchase) - 1``.
        latency: relative slowdown of every ranking request (every latency quantile moves by it).
    """

    ctr_by_platform: tuple[tuple[str, float], ...] = (
        ("ios", 0.06),
        ("android", 0.05),
        ("web", 0.0),
    )
    watch_time: float = 0.05
    conversion: float = 0.03
    revenue_per_purchase: float = 0.0
    latency: float = 0.03


@dataclass(frozen=True)
class SimulatedPhase:
    """One phase of a simulated ramp: units first exposed from ``start`` (until the next phase)
    are assigned by ``weights``, and the treated among them keep this phase's effects on CTR and
    watch time for the whole window (early units can respond differently from later ones).

    Attributes:
        start: the phase's first day; the first phase starts on the window's start.
        weights: ``(variant, weight)`` pairs in ``SimulationConfig.weights``' order; the last
            phase's are ``SimulationConfig.weights``.
        ctr_by_platform: relative lift of each platform's click probability (as
            :class:`TreatmentEffects`).
        watch_time: relative lift of expected watch seconds.
    """

    start: dt.date
    weights: tuple[tuple[str, float], ...]
    ctr_by_platform: tuple[tuple[str, float], ...] = ()
    watch_time: float = 0.0


@dataclass(frozen=True)
class SimulatedLaunch:
    """A change launched to every non-control variant of a simulated holdout: from ``date`` on,
    the treated units' effects on CTR and watch time are these (the launches so far combined);
    before the first launch the treated units have none.

    Attributes:
        name: the launch's name, as the spec's ``holdout.launches`` names it.
        date: the first day it is in force.
        ctr_by_platform: relative lift of each platform's click probability from ``date``.
        watch_time: relative lift of expected watch seconds from ``date``.
    """

    name: str
    date: dt.date
    ctr_by_platform: tuple[tuple[str, float], ...] = ()
    watch_time: float = 0.0


@dataclass(frozen=True)
class SimulatedRollout:
    """A rollout that was not randomised: each unit lives in one of ``markets`` markets
    (``m00``, ``m01``, …, an extra ``market`` column of the exposure logs), the first ``treated``
    of them get the treatment on ``date`` and keep it, every other market never does. The
    treated markets start out different (their users watch ``treated_level`` times as long),
    but every market follows the same process over the days: the trends are parallel, so the
    difference in differences is unbiased while the naive treated-versus-control comparison is
    not. A unit's variant in the logs is ``treatment`` from ``date`` in a treated market,
    ``control`` otherwise.

    Attributes:
        markets: the number of markets; units are spread uniformly over them.
        treated: how many markets (the first ones) get the treatment.
        date: the first day the treated markets have it; inside the window, after its start.
        ctr_by_platform: relative lift of each platform's click probability once treated.
        watch_time: relative lift of expected watch seconds once treated.
        treated_level: the treated markets' watch-time level relative to the others'.
    """

    markets: int
    treated: int
    date: dt.date
    ctr_by_platform: tuple[tuple[str, float], ...] = ()
    watch_time: float = 0.0
    treated_level: float = 1.0

    def market_names(self) -> tuple[str, ...]:
        """The markets' names, the treated first."""
        width = max(2, len(str(self.markets - 1)))
        return tuple(f"m{g:0{width}d}" for g in range(self.markets))


@dataclass(frozen=True)
class SimulatedOEC:
    """An overall evaluation criterion whose truth the simulation writes: the weighted sum of
    its components' true relative effects (the spec's ``oec`` with ``normalisation:
    relative``; a ratio component by its ratio of sums' lift, as the analysis linearises it).

    Attributes:
        name: the OEC's name (``oec.name``).
        components: ``(metric, weight)`` pairs; metrics whose truth the simulation knows
            (``ctr``, ``watch_time``, ``conversion``, ``revenue``, ``clicks``, ``items_shown``).
    """

    name: str
    components: tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class SimulationConfig:
    """What to simulate.

    Attributes:
        experiment_id: written to every exposure row.
        salt: the experiment's hash salt for the deterministic assignment.
        weights: ``(variant, weight)`` pairs, in order; the first variant is the control.
        n_units: eligible units, exposed on the days they are active during the window. With
            ``messy`` another ``never_exposed_share * n_units`` ineligible units are added.
        start: the first day of the experiment window (UTC).
        days: the window's length in days; it ends on ``start + days - 1``, inclusive.
        pre_days: days of history written before ``start`` (the pre-period).
        seed: the root of every random draw.
        fmt: ``"parquet"``, ``"csv"`` (ISO-8601 timestamps ending in ``Z``) or ``"jsonl"``.
        chunk_units: units generated together; bounds memory, and each chunk writes its own part
            file per day.
        messy: add duplicate exposure rows, never-exposed units and late events.
        effects: the true effects of the treatment.
        never_exposed_share: ineligible units, as a share of ``n_units`` (only when ``messy``).
        duplicate_exposure_share: share of exposure rows logged twice (only when ``messy``).
        model_logs: rows per day of the ranking, prediction and interleaving logs
            (:mod:`exp_dagster.simulate_models`); zero sizes write none.
        ramp: phases of a ramped rollout (:class:`SimulatedPhase`): each unit's variant is
            drawn under the phase of its first exposure (its hash bucket is kept, so units only
            move from control to treatment as the treatment's weight grows), and its effects
            on CTR and watch time are the phase's. Empty: one split, ``effects``.
        launches: a long-term holdout's launches (:class:`SimulatedLaunch`): the effects on
            CTR and watch time change on each launch date, none before the first. Empty:
            ``effects`` from the start. Conversion, revenue and latency keep ``effects``' in
            both cases.
        rollout: a rollout by market that was not randomised (:class:`SimulatedRollout`):
            the variant is the market's on the day, and the effects on CTR and watch time are
            the rollout's. ``effects`` must then move neither conversion, revenue nor latency.
        oec: an OEC whose truth ``truth.json`` gives (:class:`SimulatedOEC`), with those of
            the catalog's ``clicks`` and ``items_shown`` (a metric tree's factors).
        impression_rows: ``"item"`` logs one ``impression`` row (value 1) per item shown;
            ``"page"`` logs one per page served, its value the number of items shown (about 40
            rows per unit instead of about 165, the benchmarks' workload). The random draws are
            the same, so sums of impression values, clicks and every other event are identical;
            only the ``impressions`` metric (a count of rows) changes meaning.
    """

    experiment_id: str = "ranker_v2"
    salt: str = "ranker_v2-2026-10"
    weights: tuple[tuple[str, float], ...] = (("control", 0.5), ("treatment", 0.5))
    n_units: int = 40_000
    start: dt.date = date(2026, 10, 1)
    days: int = 14
    pre_days: int = 7
    seed: int = 7
    fmt: Format = "parquet"
    chunk_units: int = 250_000
    messy: bool = True
    effects: TreatmentEffects = field(default_factory=TreatmentEffects)
    never_exposed_share: float = 0.05
    duplicate_exposure_share: float = 0.01
    model_logs: ModelLogSizes = field(default_factory=ModelLogSizes)
    impression_rows: ImpressionRows = "item"
    ramp: tuple[SimulatedPhase, ...] = ()
    launches: tuple[SimulatedLaunch, ...] = ()
    rollout: SimulatedRollout | None = None
    oec: SimulatedOEC | None = None

    def __post_init__(self) -> None:
        problems: list[str] = []
        if len(self.weights) < 2:
            problems.append("weights needs at least two variants (the first is the control)")
        if abs(sum(w for _, w in self.weights) - 1.0) > 1e-9:
            problems.append(f"weights must sum to 1, got {sum(w for _, w in self.weights)}")
        if len({name for name, _ in self.weights}) != len(self.weights):
            problems.append("variant names in weights must be unique")
        if self.n_units < 1 or self.days < 1 or self.pre_days < 0 or self.chunk_units < 1:
            problems.append("n_units, days and chunk_units must be positive and pre_days >= 0")
        if self.impression_rows not in ("item", "page"):
            problems.append(
                f"impression_rows must be 'item' or 'page', got {self.impression_rows!r}"
            )
        if self.fmt not in ("parquet", "csv", "jsonl"):
            problems.append(f"fmt must be 'parquet', 'csv' or 'jsonl', got {self.fmt!r}")
        platforms = {name for name, _ in PLATFORMS}
        unknown = [name for name, _ in self.effects.ctr_by_platform if name not in platforms]
        if unknown:
            problems.append(f"effects.ctr_by_platform names unknown platforms {unknown}")
        if any(lift <= -1 for _, lift in self.effects.ctr_by_platform):
            problems.append("effects.ctr_by_platform lifts must be greater than -1")
        if not 0 <= self.never_exposed_share < 1 or not 0 <= self.duplicate_exposure_share < 1:
            problems.append("never_exposed_share and duplicate_exposure_share must be in [0, 1)")
        problems += self._phase_problems()
        if problems:
            raise ValueError("Invalid SimulationConfig: " + "; ".join(problems) + ".")

    def _phase_problems(self) -> list[str]:
        """What is wrong with ``ramp`` and ``launches`` (empty: nothing)."""
        problems: list[str] = []
        platforms = {name for name, _ in PLATFORMS}
        names = [name for name, _ in self.weights]
        changes = (*self.ramp, *self.launches, *((self.rollout,) if self.rollout else ()))
        lifts = [lift for item in changes for _, lift in item.ctr_by_platform]
        unknown = {
            name for item in changes for name, _ in item.ctr_by_platform if name not in platforms
        }
        if unknown:
            problems.append(f"ramp or launches name unknown platforms {sorted(unknown)}")
        if any(lift <= -1 for lift in lifts):
            problems.append("ramp and launch CTR lifts must be greater than -1")
        if sum(map(bool, (self.ramp, self.launches, self.rollout))) > 1:
            problems.append("a simulation has a ramp, launches or a rollout, only one of them")
        if self.rollout is not None:
            problems += self._rollout_problems(self.rollout)
        if self.ramp:
            starts = [phase.start for phase in self.ramp]
            if starts[0] != self.start or starts != sorted(set(starts)) or starts[-1] > self.end:
                problems.append(
                    "ramp phases must start on the window's start, in increasing order, inside "
                    "the window"
                )
            for phase in self.ramp:
                if [name for name, _ in phase.weights] != names or (
                    abs(sum(w for _, w in phase.weights) - 1.0) > 1e-9
                ):
                    problems.append(
                        f"the ramp phase from {phase.start} must weigh the variants {names} in "
                        f"that order, summing to 1"
                    )
            if self.ramp[-1].weights != self.weights:
                problems.append("the last ramp phase's weights must be the config's weights")
        dates = [launch.date for launch in self.launches]
        if dates and (dates != sorted(set(dates)) or dates[0] < self.start or dates[-1] > self.end):
            problems.append("launch dates must be inside the window, in increasing order")
        return problems

    def _rollout_problems(self, rollout: SimulatedRollout) -> list[str]:
        problems: list[str] = []
        if not 1 <= rollout.treated < rollout.markets:
            problems.append("rollout.treated must be at least 1 and fewer than rollout.markets")
        if not self.start < rollout.date <= self.end:
            problems.append("rollout.date must be inside the window, after its first day")
        if len(self.weights) != 2:
            problems.append("a rollout has two variants (control, then the treatment)")
        effects = self.effects
        if effects.conversion or effects.revenue_per_purchase or effects.latency:
            problems.append(
                "with a rollout, effects must not move conversion, revenue or latency (only the "
                "rollout's CTR and watch time change, from its date)"
            )
        if rollout.treated_level <= 0:
            problems.append("rollout.treated_level must be positive")
        return problems

    @property
    def end(self) -> dt.date:
        """The last day of the window, inclusive."""
        return self.start + dt.timedelta(days=self.days - 1)


@dataclass(frozen=True)
class SimulationTruth:
    """The known truth of a simulation, as written to ``truth.json``.

    Attributes:
        experiment_id: the experiment simulated.
        start: the first day of the window.
        end: the last day of the window, inclusive.
        relative_effects: true relative effect of the treatment by metric name of the catalog
            (``ctr``, ``watch_time``, ``conversion``, ``revenue``, ``impressions``,
            ``latency_p95``).
        segment_relative_effects: by metric, the true effect within each segment, keyed
            ``"platform=ios"``, ``"country=US"``, ``"is_new_user=true"``, ….
        counts: rows and units written (``exposures``, ``events``, ``events_<event>``,
            ``duplicate_exposures``, ``late_events``, ``pre_period_events``,
            ``never_exposed_units``, ``exposed_units``, ``exposed_units_<variant>``, ``units``,
            ``ranking_rows``, ``predictions_rows``, ``interleaving_rows``).
        model_evaluation: population truths of the model logs
            (:func:`exp_dagster.simulate_models.model_truth`); empty when none were written.
        estimands: truths that are not a relative effect of one metric, by name: ``oec:<name>``
            (an OEC's weighted sum of relative lifts), ``did:watch_time`` (a rollout's
            difference in differences: the absolute effect on watch seconds per treated unit-day
            after the rollout), ``bandit:<variant>:<metric>`` (an arm's true mean) and
            ``bandit_split:<day>:<variant>`` (the split served on that day). Empty (and not
            written) for the demo's experiment.
    """

    experiment_id: str
    start: dt.date
    end: dt.date
    relative_effects: dict[str, float]
    segment_relative_effects: dict[str, dict[str, float]]
    counts: dict[str, int]
    model_evaluation: dict[str, float] = field(default_factory=dict)
    estimands: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dictionary (dates as ISO strings)."""
        extra = {"estimands": dict(self.estimands)} if self.estimands else {}
        return {
            "experiment_id": self.experiment_id,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "relative_effects": dict(self.relative_effects),
            "segment_relative_effects": {
                metric: dict(by_segment)
                for metric, by_segment in self.segment_relative_effects.items()
            },
            "counts": dict(self.counts),
            "model_evaluation": dict(self.model_evaluation),
            **extra,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SimulationTruth:
        """The inverse of :meth:`to_dict`."""
        return cls(
            experiment_id=str(data["experiment_id"]),
            start=dt.date.fromisoformat(data["start"]),
            end=dt.date.fromisoformat(data["end"]),
            relative_effects={k: float(v) for k, v in data["relative_effects"].items()},
            segment_relative_effects={
                metric: {k: float(v) for k, v in by_segment.items()}
                for metric, by_segment in data["segment_relative_effects"].items()
            },
            counts={k: int(v) for k, v in data["counts"].items()},
            model_evaluation={k: float(v) for k, v in data.get("model_evaluation", {}).items()},
            estimands={k: float(v) for k, v in data.get("estimands", {}).items()},
        )


def load_truth(path: Path) -> SimulationTruth:
    """Read a ``truth.json`` written by :func:`simulate`.

    Args:
        path: the file, or the simulation's output folder holding it.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "truth.json"
    try:
        return SimulationTruth.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError as exc:
        raise FileNotFoundError(
            f"{path} does not exist; run the simulator first to write it."
        ) from exc
    except (KeyError, ValueError, TypeError) as exc:
        raise ValueError(f"{path} is not a simulation truth file ({exc!r}).") from exc


@dataclass
class _Units:
    """Latent traits of one chunk of units (arrays of the chunk's length)."""

    ids: pa.Array
    eligible: np.ndarray
    variant: np.ndarray  # index into config.weights
    bucket: np.ndarray  # the hash bucket the variant is read from
    platform: np.ndarray
    country: np.ndarray
    is_new_user: np.ndarray
    active_probability: np.ndarray
    request_rate: np.ndarray  # requests per active day are 1 + Poisson(request_rate)
    click_probability: np.ndarray
    watch_probability: np.ndarray
    watch_seconds_mean: np.ndarray
    purchase_hazard: np.ndarray  # per active day, before conversion effects
    order_value_mean: np.ndarray
    latency_log_median: np.ndarray
    phase: np.ndarray | None = None  # with a ramp: index of the phase of first exposure
    market: np.ndarray | None = None  # with a rollout: index of the unit's market


@dataclass
class _Totals:
    """What the chunks add up to: counts and the CTR truth's weighted sums by segment."""

    counts: dict[str, int] = field(default_factory=dict)
    ctr_sums: dict[str, list[float]] = field(default_factory=dict)
    segments_exposed: set[str] = field(default_factory=set)
    # With a ramp or launches, per truth label and stratum (a ramp phase; else 0): the exposed
    # units and the expected sums of (watch seconds untreated, treated; clicks untreated,
    # treated; impressions), given the units' active days (see _add_phase_totals).
    strata_sums: dict[str, dict[int, list[float]]] = field(default_factory=dict)
    # With a rollout: the treated markets' expected untreated watch seconds summed over their
    # exposed unit-days from the rollout on, and those unit-days.
    rollout_sums: list[float] = field(default_factory=lambda: [0.0, 0.0])

    def add(self, key: str, value: int) -> None:
        self.counts[key] = self.counts.get(key, 0) + int(value)


def simulate(
    out_dir: Path,
    config: SimulationConfig = SimulationConfig(),
    *,
    progress: Callable[[str], None] | None = None,
) -> SimulationTruth:
    """Write seeded exposure and event logs with known true effects, and ``truth.json``.

    Files previously written by the simulator under ``out_dir`` (``date=*/part-*`` files) are
    replaced; nothing else there is touched.

    Args:
        out_dir: the landing folder to write ``exposures/``, ``events/`` and ``truth.json`` to.
        config: what to simulate.
        progress: called with one line per simulated day and chunk.

    Returns:
        The truth, as also written to ``out_dir / "truth.json"``.
    """
    out_dir = Path(out_dir)
    _clear_previous_output(out_dir)
    messy = config.messy
    n_never = round(config.n_units * config.never_exposed_share) if messy else 0
    n_total = config.n_units + n_never
    id_width = max(7, len(str(n_total - 1)))
    ineligible = np.zeros(n_total, dtype=bool)
    if n_never:
        choose_rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(0,)))
        ineligible[choose_rng.choice(n_total, size=n_never, replace=False)] = True

    n_days = config.pre_days + config.days + (1 if messy else 0)
    first_day = config.start - dt.timedelta(days=config.pre_days)
    totals = _Totals()
    n_chunks = math.ceil(n_total / config.chunk_units)
    connection = duckdb.connect() if config.fmt != "parquet" else None
    try:
        for chunk in range(n_chunks):
            lo = chunk * config.chunk_units
            hi = min(n_total, lo + config.chunk_units)
            unit_rng = np.random.default_rng(
                np.random.SeedSequence(config.seed, spawn_key=(1, chunk))
            )
            units = _draw_units(unit_rng, config, np.arange(lo, hi), id_width, ~ineligible[lo:hi])
            active = _draw_activity(unit_rng, config, units, first_day, n_days)
            if config.ramp:
                _assign_by_phase(config, units, active)
            if config.rollout is not None:
                _assign_by_market(config, config.rollout, units, chunk)
            purchases = _draw_purchases(unit_rng, config, units, active)
            _add_unit_totals(totals, config, units, active)
            if config.ramp or config.launches:
                _add_phase_totals(totals, config, units, active, first_day)
            if config.rollout is not None:
                _add_rollout_totals(totals, config, config.rollout, units, active)
            for day_index in range(n_days):
                day = first_day + dt.timedelta(days=day_index)
                day_rng = np.random.default_rng(
                    np.random.SeedSequence(config.seed, spawn_key=(2, chunk, day_index))
                )
                exposures, events, duplicates = _simulate_day(
                    day_rng, config, units, active[:, day_index], purchases[:, day_index], day
                )
                phase = _phase(config, day)
                totals.add("exposures", exposures.num_rows)
                totals.add("duplicate_exposures", duplicates)
                totals.add("events", events.num_rows)
                if phase == "pre":
                    totals.add("pre_period_events", events.num_rows)
                elif phase == "late":
                    totals.add("late_events", events.num_rows)
                codes = pc.value_counts(events.column("event").combine_chunks()).to_pylist()
                for item in codes:
                    totals.add(f"events_{item['values']}", item["counts"])
                for kind, table in (("exposures", exposures), ("events", events)):
                    if table.num_rows:
                        path = out_dir / kind / f"date={day.isoformat()}"
                        path.mkdir(parents=True, exist_ok=True)
                        _write(table, path / f"part-{chunk:05d}.{config.fmt}", config, connection)
                if progress is not None:
                    progress(
                        f"{day.isoformat()} ({phase}) chunk {chunk + 1}/{n_chunks}: "
                        f"{exposures.num_rows:,} exposure rows, {events.num_rows:,} event rows"
                    )
    finally:
        if connection is not None:
            connection.close()

    totals.counts["units"] = n_total
    totals.counts.setdefault("duplicate_exposures", 0)
    totals.counts.setdefault("never_exposed_units", 0)
    totals.counts.setdefault("late_events", 0)
    totals.counts.setdefault("pre_period_events", 0)
    for event in EVENTS:
        totals.counts.setdefault(f"events_{event}", 0)
    truth = _truth(config, totals)
    sizes = config.model_logs
    if sizes.ranking_requests or sizes.predictions or sizes.interleaved_requests:
        connection = duckdb.connect() if config.fmt != "parquet" else None
        try:
            totals.counts.update(
                simulate_model_logs(
                    out_dir,
                    seed=config.seed,
                    variants=config.weights,
                    salt=config.salt,
                    n_units=config.n_units,
                    id_width=id_width,
                    window=[config.start + dt.timedelta(days=d) for d in range(config.days)],
                    pre_period=[first_day + dt.timedelta(days=d) for d in range(config.pre_days)],
                    sizes=sizes,
                    write=lambda table, path: _write(table, path, config, connection),
                    ext=config.fmt,
                )
            )
        finally:
            if connection is not None:
                connection.close()
        truth = dataclasses.replace(
            truth,
            counts=dict(sorted(totals.counts.items())),
            model_evaluation=model_truth(config.seed, tuple(n for n, _ in config.weights)),
        )
    (out_dir / "truth.json").write_text(
        json.dumps(truth.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    return truth


def _phase(config: SimulationConfig, day: dt.date) -> Literal["pre", "window", "late"]:
    if day < config.start:
        return "pre"
    return "window" if day <= config.end else "late"


def _clear_previous_output(out_dir: Path) -> None:
    for kind in ("exposures", "events", *LOG_KINDS):
        folder = out_dir / kind
        if not folder.is_dir():
            continue
        for day_folder in folder.glob("date=*"):
            for ext in ("parquet", "csv", "jsonl"):
                for part in day_folder.glob(f"part-*.{ext}"):
                    part.unlink()
            if day_folder.is_dir() and not any(day_folder.iterdir()):
                day_folder.rmdir()


def _categorical(
    rng: np.random.Generator, shares: tuple[tuple[str, float], ...], n: int
) -> np.ndarray:
    probabilities = np.array([share for _, share in shares])
    return rng.choice(len(shares), size=n, p=probabilities / probabilities.sum()).astype(np.int8)


def _draw_units(
    rng: np.random.Generator,
    config: SimulationConfig,
    indices: np.ndarray,
    id_width: int,
    eligible: np.ndarray,
) -> _Units:
    n = indices.size
    id_list = [f"u{i:0{id_width}d}" for i in indices.tolist()]
    bounds = np.array(bucket_upper_bounds([w for _, w in config.weights]))
    buckets = np.fromiter((hash_bucket(config.salt, u) for u in id_list), np.int64, count=n)
    # assign_variant picks the first variant whose bound exceeds the bucket.
    variant = np.searchsorted(bounds, buckets, side="right").astype(np.int8)

    platform = _categorical(rng, PLATFORMS, n)
    country = _categorical(rng, COUNTRIES, n)
    is_new_user = rng.random(n) < NEW_USER_SHARE
    engagement = rng.standard_normal(n)
    activity = np.exp(1.1 * engagement - 1.0) * _PLATFORM_ACTIVITY[platform]
    activity = np.where(is_new_user, 0.8 * activity, activity)
    active_probability = activity / (1.0 + activity)
    request_rate = 1.2 * np.sqrt(activity) * np.exp(0.3 * rng.standard_normal(n) - 0.045)

    max_ctr_lift = max(
        [
            0.0,
            *(lift for _, lift in config.effects.ctr_by_platform),
            *(
                lift
                for item in (*config.ramp, *config.launches, *filter(None, (config.rollout,)))
                for _, lift in item.ctr_by_platform
            ),
        ]
    )
    click_mean = _PLATFORM_CLICK_RATE[platform]
    concentration = 150.0
    click_probability = rng.beta(concentration * click_mean, concentration * (1 - click_mean))
    click_probability = np.minimum(click_probability, 0.9 / (1.0 + max_ctr_lift))
    watch_probability = rng.beta(6.0, 4.0, size=n)
    watch_seconds_mean = np.exp(np.log(40.0) + 1.0 * rng.standard_normal(n))

    # Cap the daily hazard so a treated unit's window conversion probability stays below 1.
    hazard_cap = 1.0 - (1.0 - _MAX_CONVERSION / (1.0 + config.effects.conversion)) ** (
        1.0 / config.days
    )
    purchase_hazard = (
        0.026
        * np.exp(0.8 * rng.standard_normal(n) - 0.32)
        * activity**0.3
        * _PLATFORM_PURCHASE[platform]
        * _COUNTRY_PURCHASE[country]
    )
    purchase_hazard = np.minimum(purchase_hazard, min(hazard_cap, 0.2))
    order_value_mean = _COUNTRY_ORDER_VALUE[country] * np.exp(0.5 * rng.standard_normal(n) - 0.125)
    latency_log_median = np.log(_PLATFORM_LATENCY_MEDIAN_MS[platform]) + 0.15 * (
        rng.standard_normal(n)
    )
    return _Units(
        ids=pa.array(id_list, type=pa.string()),
        eligible=eligible,
        variant=variant,
        bucket=buckets,
        platform=platform,
        country=country,
        is_new_user=is_new_user,
        active_probability=active_probability,
        request_rate=request_rate,
        click_probability=click_probability,
        watch_probability=watch_probability,
        watch_seconds_mean=watch_seconds_mean,
        purchase_hazard=purchase_hazard,
        order_value_mean=order_value_mean,
        latency_log_median=latency_log_median,
    )


def _draw_activity(
    rng: np.random.Generator,
    config: SimulationConfig,
    units: _Units,
    first_day: dt.date,
    n_days: int,
) -> np.ndarray:
    """Which units are active on which days (units by days); new users start with the window."""
    weekday = np.array(
        [_WEEKDAY_ACTIVITY[(first_day + dt.timedelta(days=d)).weekday()] for d in range(n_days)]
    )
    odds = units.active_probability / (1.0 - units.active_probability)
    probability = (odds[:, None] * weekday) / (1.0 + odds[:, None] * weekday)
    active = rng.random((units.variant.size, n_days)) < probability
    active[units.is_new_user, : config.pre_days] = False
    return active


def _assign_by_phase(config: SimulationConfig, units: _Units, active: np.ndarray) -> None:
    """A ramp: each unit's phase is the one in force on its first active window day (its first
    exposure), and its variant its bucket's under that phase's weights (sticky afterwards)."""
    window = active[:, config.pre_days : config.pre_days + config.days]
    first = np.where(window.any(axis=1), window.argmax(axis=1), 0)
    offsets = np.array([(phase.start - config.start).days for phase in config.ramp])
    units.phase = (np.searchsorted(offsets, first, side="right") - 1).astype(np.int8)
    for index, phase in enumerate(config.ramp):
        bounds = np.array(bucket_upper_bounds([w for _, w in phase.weights]))
        mine = units.phase == index
        units.variant[mine] = np.searchsorted(bounds, units.bucket[mine], side="right")


def _assign_by_market(
    config: SimulationConfig, rollout: SimulatedRollout, units: _Units, chunk: int
) -> None:
    """A rollout: each unit's market, uniform, from its own random stream (the other draws are
    those of the same simulation without a rollout); the treated markets' units are the
    treatment's (from the rollout's date) and watch ``treated_level`` times as long."""
    rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(3, chunk)))
    units.market = rng.integers(0, rollout.markets, units.variant.size).astype(np.int16)
    in_treated_market = units.market < rollout.treated
    units.variant = in_treated_market.astype(np.int8)
    units.watch_seconds_mean = units.watch_seconds_mean * np.where(
        in_treated_market, rollout.treated_level, 1.0
    )


def _add_rollout_totals(
    totals: _Totals,
    config: SimulationConfig,
    rollout: SimulatedRollout,
    units: _Units,
    active: np.ndarray,
) -> None:
    """The difference in differences' truth: its estimand is the treated markets' effect on
    their unit-days after the rollout, ``watch_time`` times their expected untreated watch
    seconds (given the days they are active), since every market's untreated expectation
    follows the same course."""
    post = slice(
        config.pre_days + (rollout.date - config.start).days, config.pre_days + config.days
    )
    days = active[:, post].sum(axis=1).astype(float)
    treated = units.eligible & (units.variant == 1)
    clicks = (1.0 + units.request_rate) * _IMPRESSIONS_PER_REQUEST * units.click_probability
    watch = clicks * units.watch_probability * units.watch_seconds_mean
    totals.rollout_sums[0] += math.fsum((days * watch)[treated])
    totals.rollout_sums[1] += float(days[treated].sum())


def _lifts_of(ctr_by_platform: tuple[tuple[str, float], ...]) -> np.ndarray:
    by_name = dict(ctr_by_platform)
    return np.array([by_name.get(name, 0.0) for name, _ in PLATFORMS])


def _effects_on(
    config: SimulationConfig, units: _Units, day: dt.date
) -> tuple[np.ndarray, np.ndarray | float]:
    """Per unit, the CTR lift and watch-time effect a treated unit has on ``day``: its ramp
    phase's, the launches' in force (none before the first), else ``effects``'."""
    if config.ramp:
        assert units.phase is not None
        lifts = np.stack([_lifts_of(phase.ctr_by_platform) for phase in config.ramp])
        watch = np.array([phase.watch_time for phase in config.ramp])
        return lifts[units.phase, units.platform], watch[units.phase]
    if config.rollout is not None:
        return _platform_lifts(config)[units.platform], config.rollout.watch_time
    if config.launches:
        launched = [launch for launch in config.launches if launch.date <= day]
        if not launched:
            return np.zeros(units.platform.size), 0.0
        return _lifts_of(launched[-1].ctr_by_platform)[units.platform], launched[-1].watch_time
    return _platform_lifts(config)[units.platform], config.effects.watch_time


def _treated_units(units: _Units) -> np.ndarray:
    """Eligible units of a non-control variant: treated on every window day they are exposed."""
    return units.eligible & (units.variant != 0)


def _draw_purchases(
    rng: np.random.Generator, config: SimulationConfig, units: _Units, active: np.ndarray
) -> np.ndarray:
    """Purchases per unit and day (units by days).

    Over each period (the pre-period, the window) a unit converts with probability
    ``1 - (1 - hazard) ** active_days``, multiplied by ``1 + effects.conversion`` for treated
    units in the window, so the window conversion effect holds exactly for every unit. A converter
    makes its first purchase on one of its active days and ``Poisson(0.35)`` more spread over them.
    Late days (after the window) draw one Bernoulli(hazard) purchase per active day.
    """
    n, n_days = active.shape
    purchases = np.zeros((n, n_days), dtype=np.int16)
    window = slice(config.pre_days, config.pre_days + config.days)
    periods = [(slice(0, config.pre_days), False), (window, True)]
    treated = _treated_units(units)
    for period, in_window in periods:
        period_active = active[:, period]
        if period_active.shape[1] == 0:  # no pre-period (pre_days=0)
            continue
        active_days = period_active.sum(axis=1)
        conversion = 1.0 - (1.0 - units.purchase_hazard) ** active_days
        if in_window:
            conversion = np.where(
                treated, conversion * (1.0 + config.effects.conversion), conversion
            )
        converts = (rng.random(n) < conversion) & (active_days > 0)
        keys = rng.random(period_active.shape) * period_active
        first = keys.argmax(axis=1)
        counts = np.zeros(period_active.shape, dtype=np.int16)
        rows = np.flatnonzero(converts)
        counts[rows, first[rows]] = 1
        extra_rate = np.where(converts, _EXTRA_PURCHASES_MEAN / np.maximum(active_days, 1), 0.0)
        counts += (rng.poisson(extra_rate[:, None] * period_active)).astype(np.int16)
        purchases[:, period] = counts
    late = slice(config.pre_days + config.days, n_days)
    late_active = active[:, late]
    purchases[:, late] = (
        rng.random(late_active.shape) < units.purchase_hazard[:, None] * late_active
    )
    return purchases


def _add_unit_totals(
    totals: _Totals, config: SimulationConfig, units: _Units, active: np.ndarray
) -> None:
    """Unit counts and the CTR truth's sums over the chunk's exposed units.

    Expected impressions of a unit in the window, given its active days, are
    ``active_days * (1 + request_rate) * 10``; its expected clicks are that times its click
    probability, times ``1 + lift`` of its platform when treated. The true CTR lift of a segment
    is the ratio of the expected clicks of the segment's exposed units all treated, to all
    untreated, minus one.
    """
    window_days = active[:, config.pre_days : config.pre_days + config.days].sum(axis=1)
    exposed = units.eligible & (window_days > 0)
    totals.add("eligible_units", int(units.eligible.sum()))
    totals.add("exposed_units", int(exposed.sum()))
    for index, (name, _) in enumerate(config.weights):
        totals.add(f"exposed_units_{name}", int((exposed & (units.variant == index)).sum()))
    totals.add("never_exposed_units", int((~units.eligible & (window_days > 0)).sum()))
    totals.add("inactive_eligible_units", int((units.eligible & (window_days == 0)).sum()))

    lifts = _platform_lifts(config)
    base = (
        window_days
        * (1.0 + units.request_rate)
        * _IMPRESSIONS_PER_REQUEST
        * units.click_probability
    )
    treated_clicks = base * (1.0 + lifts[units.platform])
    segments = _segment_labels(units)
    for label, mask in [("overall", np.ones_like(exposed)), *segments]:
        selected = exposed & mask
        if not selected.any():
            continue
        totals.segments_exposed.add(label)
        sums = totals.ctr_sums.setdefault(label, [0.0, 0.0])
        sums[0] += math.fsum(treated_clicks[selected])
        sums[1] += math.fsum(base[selected])


def _add_phase_totals(
    totals: _Totals,
    config: SimulationConfig,
    units: _Units,
    active: np.ndarray,
    first_day: dt.date,
) -> None:
    """The sums the truths of a ramp or of launches need, per truth label and stratum.

    Given its active window days, a unit's expected impressions per active day are
    ``(1 + request_rate) * 10``, its clicks that times its click probability (times ``1 + lift``
    treated), and its watch seconds the clicks times its watch probability and mean duration
    (times ``1 + watch_time`` treated: the durations are scaled to cancel the extra clicks).
    A ramp sums every unit's window under its phase of first exposure (the stratum); launches
    sum each day under the effects then in force, over the whole window (label ``overall`` and
    the segments) and over the days from each launch (``launch_period=<name>``)."""
    window = slice(config.pre_days, config.pre_days + config.days)
    days_active = active[:, window].astype(float)
    exposed = units.eligible & (days_active.sum(axis=1) > 0)
    impressions = (1.0 + units.request_rate) * _IMPRESSIONS_PER_REQUEST
    clicks = impressions * units.click_probability
    watch = clicks * units.watch_probability * units.watch_seconds_mean
    labels = [("overall", np.ones_like(exposed)), *_segment_labels(units)]
    window_days = [config.start + dt.timedelta(days=d) for d in range(config.days)]
    if config.ramp:
        assert units.phase is not None
        lifts, effect = _effects_on(config, units, config.start)
        n_days = days_active.sum(axis=1)
        terms = [
            np.ones_like(n_days),
            n_days * watch,
            n_days * watch * (1.0 + effect),
            n_days * clicks,
            n_days * clicks * (1.0 + lifts),
            n_days * impressions,
        ]
        for index, phase in enumerate(config.ramp):
            in_phase = units.phase == index
            for label, mask in [*labels, (f"ramp_phase={phase.start}", np.ones_like(exposed))]:
                selected = exposed & mask & in_phase
                sums = totals.strata_sums.setdefault(label, {}).setdefault(index, [0.0] * 6)
                for k, term in enumerate(terms):
                    sums[k] += math.fsum(term[selected])
        return
    periods = [("overall", config.start)] + [
        (f"launch_period={launch.name}", launch.date) for launch in config.launches
    ]
    for period_label, since in periods:
        sums_by_label = {label: [0.0] * 6 for label, _ in labels}
        counted = np.zeros(exposed.size, dtype=bool)
        for offset, day in enumerate(window_days):
            if day < since:
                continue
            lifts, effect = _effects_on(config, units, day)
            on = days_active[:, offset]
            counted |= on > 0
            terms = [
                np.zeros_like(on),
                on * watch,
                on * watch * (1.0 + effect),
                on * clicks,
                on * clicks * (1.0 + lifts),
                on * impressions,
            ]
            for label, mask in labels:
                for k, term in enumerate(terms):
                    sums_by_label[label][k] += math.fsum(term[exposed & mask])
        for label, mask in labels:
            key = label if period_label == "overall" else f"{period_label}|{label}"
            sums = totals.strata_sums.setdefault(key, {}).setdefault(0, [0.0] * 6)
            sums[0] += float((exposed & mask).sum())
            for k in range(1, 6):
                sums[k] += sums_by_label[label][k]


def _platform_lifts(config: SimulationConfig) -> np.ndarray:
    """Each platform's CTR lift of a treated unit (a rollout's, else ``effects``')."""
    changes = config.rollout.ctr_by_platform if config.rollout else config.effects.ctr_by_platform
    by_name = dict(changes)
    return np.array([by_name.get(name, 0.0) for name, _ in PLATFORMS])


def _segment_labels(units: _Units) -> list[tuple[str, np.ndarray]]:
    labels: list[tuple[str, np.ndarray]] = []
    for index, (name, _) in enumerate(PLATFORMS):
        labels.append((f"platform={name}", units.platform == index))
    for index, (name, _) in enumerate(COUNTRIES):
        labels.append((f"country={name}", units.country == index))
    labels.append(("is_new_user=true", units.is_new_user))
    labels.append(("is_new_user=false", ~units.is_new_user))
    return labels


def _truth(config: SimulationConfig, totals: _Totals) -> SimulationTruth:
    effects = config.effects
    constant = {
        "watch_time": effects.watch_time,
        "conversion": effects.conversion,
        "revenue": (1.0 + effects.conversion) * (1.0 + effects.revenue_per_purchase) - 1.0,
        "impressions": 0.0,
        "latency_p95": effects.latency,
    }

    def ctr_lift(label: str) -> float:
        treated, untreated = totals.ctr_sums[label]
        return treated / untreated - 1.0 if untreated > 0 else 0.0

    overall_ctr = ctr_lift("overall") if "overall" in totals.ctr_sums else 0.0
    segments = sorted(totals.segments_exposed - {"overall"})
    by_segment: dict[str, dict[str, float]] = {
        "ctr": {label: ctr_lift(label) for label in segments},
        **{metric: dict.fromkeys(segments, lift) for metric, lift in constant.items()},
    }
    if totals.strata_sums:
        # A ramp or launches: CTR and watch time from the strata's expected sums.
        for label, strata in sorted(totals.strata_sums.items()):
            watch, ctr = _stratified_truth(strata.values())
            key = label.split("|", 1)[0] if label.endswith("|overall") else label
            if key == "overall":
                constant["watch_time"], overall_ctr = watch, ctr
                continue
            if "|" in key:
                continue  # a segment within a launch period: not reported
            by_segment["watch_time"][key] = watch
            by_segment["ctr"][key] = ctr
            for metric, lift in constant.items():
                if metric != "watch_time":
                    by_segment[metric].setdefault(key, lift)
    estimands: dict[str, float] = {}
    if config.rollout is not None:
        constant["watch_time"] = config.rollout.watch_time
        for segment in by_segment["watch_time"]:
            by_segment["watch_time"][segment] = config.rollout.watch_time
        watch, unit_days = totals.rollout_sums
        estimands["did:watch_time"] = (
            config.rollout.watch_time * watch / unit_days if unit_days else 0.0
        )
    relative_effects = {"ctr": overall_ctr, **constant}
    if config.oec is not None:
        # clicks per unit = items shown per unit (unmoved) x ctr
        relative_effects |= {"clicks": overall_ctr, "items_shown": 0.0}
        estimands[f"oec:{config.oec.name}"] = math.fsum(
            weight * relative_effects[metric] for metric, weight in config.oec.components
        )
    return SimulationTruth(
        experiment_id=config.experiment_id,
        start=config.start,
        end=config.end,
        relative_effects=relative_effects,
        segment_relative_effects=by_segment,
        counts=dict(sorted(totals.counts.items())),
        estimands=estimands,
    )


def _stratified_truth(strata: Any) -> tuple[float, float]:
    """The relative effects on watch time and CTR of the estimand the analysis reports for
    these strata (ramp phases, or one stratum): within each, the treated over the untreated
    expected value; across them, weighted by their units (for CTR, the strata's ratios of sums
    weighted so, as the phase-stratified ratio test weighs them)."""
    rows = [row for row in strata if row[3] > 0 and row[5] > 0]
    if not rows:
        return 0.0, 0.0
    units = [row[0] if row[0] > 0 else 1.0 for row in rows]
    watch = math.fsum(r[2] for r in rows) / math.fsum(r[1] for r in rows) - 1.0
    treated = math.fsum(n * r[4] / r[5] for n, r in zip(units, rows, strict=True))
    untreated = math.fsum(n * r[3] / r[5] for n, r in zip(units, rows, strict=True))
    return watch, treated / untreated - 1.0


def _segment_starts(counts: np.ndarray) -> np.ndarray:
    """Start offset of each group when groups of ``counts`` rows are laid end to end."""
    return np.cumsum(counts) - counts


def _position_in_group(counts: np.ndarray) -> np.ndarray:
    """0, 1, … within each group of ``counts`` consecutive rows."""
    total = int(counts.sum())
    return np.arange(total) - np.repeat(_segment_starts(counts), counts)


def _simulate_day(
    rng: np.random.Generator,
    config: SimulationConfig,
    units: _Units,
    active_today: np.ndarray,
    purchases_today: np.ndarray,
    day: dt.date,
) -> tuple[pa.Table, pa.Table, int]:
    """Exposure rows, event rows and the number of duplicated exposure rows of a chunk's day."""
    phase = _phase(config, day)
    effects = config.effects
    day_start = int((day - dt.date(1970, 1, 1)).days) * _US_PER_DAY  # UTC midnight in microseconds
    day_last = day_start + _US_PER_DAY - 1
    who = np.flatnonzero(active_today)
    m = who.size
    treated = _treated_units(units)[who] & (phase == "window")
    if config.rollout is not None and day < config.rollout.date:
        treated[:] = False

    session_start = day_start + (rng.random(m) * _SESSION_START_SPAN * _US_PER_DAY).astype(np.int64)

    # Requests: one latency row each, at strictly increasing times after the session start (the
    # exposure): the first follows the app's opening within a moment, the others minutes apart.
    requests = 1 + rng.poisson(units.request_rate[who])
    request_unit = np.repeat(np.arange(m), requests)
    first_request = _segment_starts(requests)
    gap_means = np.full(request_unit.size, _REQUEST_GAP_MEAN_S * _US_PER_SECOND)
    gap_means[first_request] = _FIRST_REQUEST_DELAY_MEAN_S * _US_PER_SECOND
    gaps = 1 + np.floor(rng.exponential(gap_means))
    elapsed = np.cumsum(gaps)
    elapsed -= np.repeat(elapsed[first_request] - gaps[first_request], requests)
    request_time = np.minimum(session_start[request_unit] + elapsed.astype(np.int64), day_last)
    latency = np.exp(
        units.latency_log_median[who][request_unit] + 0.5 * rng.standard_normal(request_unit.size)
    )
    latency *= np.where(treated[request_unit], 1.0 + effects.latency, 1.0)
    unit_lifts, unit_watch = (
        _effects_on(config, units, day)
        if config.ramp or config.launches or config.rollout
        else (_platform_lifts(config)[units.platform], effects.watch_time)
    )
    served_time = request_time + (latency * 1000.0).astype(np.int64)

    # Impressions: the page's items, logged 1 ms apart once the ranking is served.
    impressions = _IMPRESSIONS_MIN + rng.binomial(_IMPRESSIONS_SPREAD, 0.5, request_unit.size)
    impression_request = np.repeat(np.arange(request_unit.size), impressions)
    impression_time = served_time[impression_request] + 1000 * (1 + _position_in_group(impressions))

    # Clicks per page, then watches of the clicked items.
    lifts = unit_lifts[who]
    click_probability = units.click_probability[who] * np.where(treated, 1.0 + lifts, 1.0)
    clicks = rng.binomial(impressions, click_probability[request_unit])
    click_request = np.repeat(np.arange(request_unit.size), clicks)
    click_unit = request_unit[click_request]
    click_time = served_time[click_request] + (
        1 + np.floor(rng.exponential(_CLICK_DELAY_MEAN_S * _US_PER_SECOND, click_request.size))
    ).astype(np.int64)
    watched = rng.random(click_unit.size) < units.watch_probability[who][click_unit]
    watch_unit = click_unit[watched]
    watch_time = click_time[watched] + _US_PER_SECOND
    watch_sigma = 0.6
    watch_seconds = units.watch_seconds_mean[who][watch_unit] * np.exp(
        watch_sigma * rng.standard_normal(watch_unit.size) - watch_sigma**2 / 2
    )
    # Treated watches are more numerous by the CTR lift; scale durations so that expected watch
    # seconds per unit move by exactly the watch-time effect.
    watch_effect = unit_watch[who] if isinstance(unit_watch, np.ndarray) else unit_watch
    watch_scale = (1.0 + watch_effect) / (1.0 + lifts)
    watch_seconds *= np.where(treated, watch_scale, 1.0)[watch_unit]

    # Purchases at uniform times in the rest of the day.
    purchase_unit = np.repeat(np.arange(m), purchases_today[who].astype(np.int64))
    remaining = (day_last - session_start[purchase_unit]).astype(np.float64)
    purchase_time = session_start[purchase_unit] + np.maximum(
        1, ((1.0 - rng.random(purchase_unit.size)) * remaining).astype(np.int64)
    )
    order_sigma = 0.6
    order_value = units.order_value_mean[who][purchase_unit] * np.exp(
        order_sigma * rng.standard_normal(purchase_unit.size) - order_sigma**2 / 2
    )
    order_value *= np.where(treated, 1.0 + effects.revenue_per_purchase, 1.0)[purchase_unit]
    order_value = np.round(order_value, 2)

    if config.impression_rows == "page":
        impression_part = (
            request_unit,
            served_time + 1000,
            _IMPRESSION,
            impressions.astype(np.float64),
        )
    else:
        impression_part = (request_unit[impression_request], impression_time, _IMPRESSION, None)
    parts = [
        impression_part,
        (click_unit, click_time, _CLICK, None),
        (watch_unit, watch_time, _WATCH, np.round(watch_seconds, 3)),
        (purchase_unit, purchase_time, _PURCHASE, order_value),
        (request_unit, request_time, _LATENCY, np.round(latency, 3)),
    ]
    event_unit = np.concatenate([p[0] for p in parts])
    event_time = np.minimum(np.concatenate([p[1] for p in parts]), day_last)
    event_code = np.concatenate([np.full(p[0].size, p[2], dtype=np.int8) for p in parts])
    event_value = np.concatenate(
        [np.ones(p[0].size) if p[3] is None else p[3].astype(np.float64) for p in parts]
    )
    order = np.lexsort((event_code, event_time, event_unit))
    events = pa.table(
        {
            "unit_id": units.ids.take(pa.array(who[event_unit[order]])),
            "event_time": pa.array(event_time[order], type=pa.timestamp("us", tz="UTC")),
            "event": pa.array(EVENTS, type=pa.string()).take(pa.array(event_code[order])),
            "value": pa.array(event_value[order], type=pa.float64()),
        }
    )

    exposed = units.eligible[who] if phase == "window" else np.zeros(m, dtype=bool)
    exposure_rows = np.flatnonzero(exposed)
    duplicates = 0
    if config.messy and exposure_rows.size:
        # Logged twice, identically: the copy follows the original.
        twice = rng.random(exposure_rows.size) < config.duplicate_exposure_share
        duplicates = int(twice.sum())
        exposure_rows = np.repeat(exposure_rows, np.where(twice, 2, 1))
    exposure_units = who[exposure_rows]
    variant_names = pa.array([name for name, _ in config.weights], type=pa.string())
    variant = units.variant
    if config.rollout is not None and day < config.rollout.date:
        variant = np.zeros_like(units.variant)  # every market is the control's before it
    markets: dict[str, pa.Array] = {}
    if config.rollout is not None:
        assert units.market is not None
        names = pa.array(config.rollout.market_names(), type=pa.string())
        markets["market"] = names.take(pa.array(units.market[exposure_units]))
    exposures = pa.table(
        {
            "experiment_id": pa.array([config.experiment_id], type=pa.string()).take(
                pa.array(np.zeros(exposure_units.size, dtype=np.int64))
            ),
            "unit_id": units.ids.take(pa.array(exposure_units)),
            "variant": variant_names.take(pa.array(variant[exposure_units])),
            "exposed_at": pa.array(session_start[exposure_rows], type=pa.timestamp("us", tz="UTC")),
            "platform": pa.array([n for n, _ in PLATFORMS], type=pa.string()).take(
                pa.array(units.platform[exposure_units])
            ),
            "country": pa.array([n for n, _ in COUNTRIES], type=pa.string()).take(
                pa.array(units.country[exposure_units])
            ),
            "is_new_user": pa.array(units.is_new_user[exposure_units], type=pa.bool_()),
            **markets,
        }
    )
    return exposures, events, duplicates


def _write(
    table: pa.Table,
    path: Path,
    config: SimulationConfig,
    connection: duckdb.DuckDBPyConnection | None,
) -> None:
    if config.fmt == "parquet":
        pq.write_table(table, path, compression="zstd")
        return
    assert connection is not None
    # Text formats carry ISO-8601 timestamps with a trailing Z, which every reader parses as UTC.
    for name in ("exposed_at", "event_time"):
        if name in table.column_names:
            iso = pc.binary_join_element_wise(
                pc.strftime(table.column(name), format="%Y-%m-%dT%H:%M:%S"), "Z", ""
            )
            table = table.set_column(table.column_names.index(name), name, iso)
    connection.register("simulated_rows", table)
    try:
        connection.execute(_COPY_SQL[config.fmt], {"path": str(path)})
    finally:
        connection.unregister("simulated_rows")
