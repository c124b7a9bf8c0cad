"""Difference-in-differences for rollouts that were not randomised.

When a new model is launched per market (or per store, per region) instead of per user, the
treated and untreated clusters differ in level, and the effect is estimated by how much more the
treated clusters changed after the launch than the others did: the difference in differences.
Its validity rests on *parallel trends* (without the launch, both groups would have moved alike),
which the pre-launch periods can check: :func:`event_study` estimates the effect period by
period and tests that the pre-launch ones are 0.

Both estimators are ordinary least squares on the observations (units, events, cluster-days)
with errors clustered by cluster, computed from **sufficient statistics per cluster × period**
(:class:`ClusterPeriodSums`: the number of observations and the sum of the outcome, one
``GROUP BY cluster, period`` in any warehouse). That is enough because every regressor is a
function of the cluster's group and the period only: the cross-products ``X'X``, ``X'y`` and
each cluster's score ``sum_i x_i e_i`` are sums over the cells. The outcome's sum of squares is
not needed by the cluster-robust covariance.

Conventions:

* Cluster-robust covariance CR1, Liang & Zeger's sandwich with Stata's small-sample factor
  ``G / (G - 1) * (N - 1) / (N - K)`` (``G`` clusters, ``N`` observations, ``K`` coefficients):
  Stata's ``vce(cluster)``, statsmodels' ``cov_type="cluster"`` (``use_correction=True``).
* Inference uses the t distribution with ``G - 1`` degrees of freedom (Stata's convention, and
  statsmodels' with ``use_t=True``), not ``N - K``: with few clusters the covariance is estimated
  from ``G`` scores only. The joint test of the pre-period coefficients is the Wald F statistic
  ``W / q`` referred to ``F(q, G - 1)`` (Stata's ``test``, statsmodels'
  ``wald_test(use_f=True)``). With fewer than about 30-50 clusters, or very unbalanced ones, CR1
  intervals under-cover (Cameron & Miller 2015); a wild cluster bootstrap is then better, and is
  not provided here.
* Each observation has weight 1: cells with more observations weigh more. To give every cluster
  the same weight, pass one observation per cluster × period (``n = 1``, ``total`` = the
  cluster's mean).
* A cluster is treated or not for the whole panel (its group), and every treated cluster starts
  at ``treatment_start`` (no staggered adoption: with staggered starts and effects that change
  over time, the two-way regression is biased, Goodman-Bacon 2021).

References:
    Angrist, J. D., & Pischke, J.-S. (2009). Mostly Harmless Econometrics. Princeton University
    Press. Chapter 5 (differences-in-differences, the event study as a check of parallel trends).
    Liang, K.-Y., & Zeger, S. L. (1986). Longitudinal data analysis using generalized linear
    models. Biometrika, 73(1), 13-22.
    Bertrand, M., Duflo, E., & Mullainathan, S. (2004). How much should we trust
    differences-in-differences estimates? The Quarterly Journal of Economics, 119(1), 249-275.
    Cameron, A. C., & Miller, D. L. (2015). A practitioner's guide to cluster-robust inference.
    Journal of Human Resources, 50(2), 317-372.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special

from exp_dagster.stats._common import Alternative, check_alpha, infer, sidedness


@dataclass(frozen=True)
class ClusterPeriodSums:
    """Per cluster × period sufficient statistics of a panel: one entry per cell.

    A warehouse computes them with ``SELECT cluster, treated, period, count(*), sum(y) ... GROUP
    BY cluster, treated, period``. Cells may be missing (a cluster not observed in a period) and a
    cluster may appear in a period once only. Lists are accepted and stored as tuples.

    Attributes:
        cluster: the cluster of each cell (market, store, or the unit itself); any hashable label.
        treated: whether the cell's cluster is in the treated group; constant within a cluster.
        period: the period of each cell (day, week number, date); any values that sort.
        n: number of observations in the cell, a non-negative integer (empty cells are ignored).
        total: the sum of the outcome over the cell's observations (0 for an empty cell).

    Examples:
        >>> panel = ClusterPeriodSums.from_values(
        ...     cluster=["a", "a", "a", "b", "b"],
        ...     treated=[True, True, True, False, False],
        ...     period=[1, 1, 2, 1, 2],
        ...     y=[1.0, 2.0, 4.0, 0.5, 1.5],
        ... )
        >>> panel.cluster, panel.period, panel.n, panel.total
        (('a', 'a', 'b', 'b'), (1, 2, 1, 2), (2, 1, 1, 1), (3.0, 4.0, 0.5, 1.5))
    """

    cluster: tuple[Hashable, ...]
    treated: tuple[bool, ...]
    period: tuple[Any, ...]
    n: tuple[int, ...]
    total: tuple[float, ...]

    def __post_init__(self) -> None:
        fields = ("cluster", "treated", "period", "n", "total")
        lengths = {name: len(getattr(self, name)) for name in fields}
        if len(set(lengths.values())) != 1:
            raise ValueError(
                f"ClusterPeriodSums needs one value per cell in every field; got lengths {lengths}."
            )
        object.__setattr__(self, "cluster", tuple(self.cluster))
        object.__setattr__(self, "period", tuple(self.period))
        object.__setattr__(self, "treated", tuple(bool(flag) for flag in self.treated))
        counts = []
        for index, count in enumerate(self.n):
            if isinstance(count, bool) or not float(count).is_integer() or count < 0:
                raise ValueError(
                    f"ClusterPeriodSums.n[{index}] is a number of observations and must be a "
                    f"non-negative integer; got {count!r}."
                )
            counts.append(int(count))
        object.__setattr__(self, "n", tuple(counts))
        totals = tuple(float(value) for value in self.total)
        for index, (count, value) in enumerate(zip(counts, totals, strict=True)):
            if not math.isfinite(value):
                raise ValueError(
                    f"ClusterPeriodSums.total[{index}] must be finite; got {value!r}. Drop or "
                    f"impute missing outcomes before summing."
                )
            if count == 0 and value != 0.0:
                raise ValueError(
                    f"ClusterPeriodSums cell {index} has no observations but a total of "
                    f"{value!r}; an empty cell must have total 0."
                )
        object.__setattr__(self, "total", totals)
        group: dict[Hashable, bool] = {}
        seen: set[tuple[Hashable, Any]] = set()
        for cluster, flag, period in zip(self.cluster, self.treated, self.period, strict=True):
            if group.setdefault(cluster, flag) != flag:
                raise ValueError(
                    f"Cluster {cluster!r} is marked both treated and untreated; a cluster "
                    f"belongs to one group for the whole panel (staggered or switching "
                    f"treatment is not supported)."
                )
            if (cluster, period) in seen:
                raise ValueError(
                    f"Cluster {cluster!r} has two cells for period {period!r}; aggregate to one "
                    f"cell per cluster and period."
                )
            seen.add((cluster, period))

    @classmethod
    def from_values(
        cls,
        cluster: Sequence[Hashable],
        treated: Sequence[bool],
        period: Sequence[Any],
        y: Sequence[float],
    ) -> ClusterPeriodSums:
        """Reduce per-observation data to cells, ordered by first appearance of each cell.

        For notebooks and tests; in the pipeline the warehouse does this reduction.
        """
        cells: dict[tuple[Hashable, Any], list[Any]] = {}
        for cluster_id, flag, period_id, value in zip(cluster, treated, period, y, strict=True):
            cell = cells.setdefault((cluster_id, period_id), [bool(flag), 0, 0.0])
            if cell[0] != bool(flag):
                raise ValueError(
                    f"Cluster {cluster_id!r} is marked both treated and untreated in period "
                    f"{period_id!r}; a cluster belongs to one group."
                )
            cell[1] += 1
            cell[2] += float(value)
        return cls(
            cluster=tuple(key[0] for key in cells),
            treated=tuple(cell[0] for cell in cells.values()),
            period=tuple(key[1] for key in cells),
            n=tuple(cell[1] for cell in cells.values()),
            total=tuple(cell[2] for cell in cells.values()),
        )


@dataclass(frozen=True)
class DiDResult:
    """The 2 × 2 difference-in-differences effect with a cluster-robust standard error.

    Attributes:
        effect: ``(treated_post - treated_pre) - (control_post - control_pre)`` of the means over
            observations, the coefficient of ``treated:post`` in ``y ~ treated * post``.
        std_error: its CR1 cluster-robust standard error.
        statistic: the t statistic ``effect / std_error``.
        df: degrees of freedom of the t reference, ``G - 1``.
        p_value: p-value under the alternative.
        ci_low: lower bound of the level ``1 - alpha`` interval (``-inf`` for ``"less"``).
        ci_high: upper bound (``+inf`` for ``"greater"``).
        control_pre: mean outcome of the control clusters' observations before the start.
        control_post: ... of the control clusters from the start on.
        treated_pre: ... of the treated clusters before the start.
        treated_post: ... of the treated clusters from the start on.
        counterfactual: ``treated_pre + control_post - control_pre``, the treated clusters' mean
            after the start had they followed the control clusters' trend.
        n_clusters: number of clusters ``G`` with at least one observation.
        n_treated_clusters: how many of them are treated.
        n_observations: number of observations ``N``.
        method: one sentence naming the estimator and its conventions.
    """

    effect: float
    std_error: float
    statistic: float
    df: int
    p_value: float
    ci_low: float
    ci_high: float
    control_pre: float
    control_post: float
    treated_pre: float
    treated_post: float
    counterfactual: float
    n_clusters: int
    n_treated_clusters: int
    n_observations: int
    method: str


@dataclass(frozen=True)
class EventStudyResult:
    """Per-period effects relative to a reference pre-period, and the parallel-trends check.

    Attributes:
        periods: every period of the panel, sorted (the reference included).
        effects: the coefficient of ``treated × period`` for each period, i.e. how much more the
            treated clusters' mean moved than the control clusters' between the reference
            period and this one; 0 for the reference period.
        std_errors: CR1 cluster-robust standard errors (0 for the reference period).
        ci_lows: lower bounds of the two-sided level ``1 - alpha`` intervals (t with ``G - 1``
            df); the effect itself for the reference period.
        ci_highs: upper bounds.
        p_values: two-sided p-values of each effect (``nan`` for the reference period).
        covariance: the CR1 covariance matrix of the non-reference effects, in the order of
            ``periods`` without the reference, as a tuple of rows.
        reference_period: the period all effects are relative to.
        treatment_start: the first treated period; periods before it are pre-periods.
        pre_periods: the pre-periods tested for parallel trends (all but the reference).
        pre_trend_statistic: the Wald F statistic ``W / q`` of the joint hypothesis that the
            effects of ``pre_periods`` are all 0, ``W = b' V^-1 b`` with their CR1 covariance
            ``V``; ``nan`` when not testable (see ``method``).
        pre_trend_df: ``(q, G - 1)``, the degrees of freedom of its F reference.
        pre_trend_p_value: upper-tail ``F(q, G - 1)`` probability; a small value says the
            groups' trends differed before the start, so the effects are not credible.
        average_post_effect: the mean of the effects of the periods from ``treatment_start`` on.
        average_post_std_error: its CR1 standard error (from the full covariance).
        df: degrees of freedom of the t references, ``G - 1``.
        n_clusters: number of clusters ``G`` with at least one observation.
        n_observations: number of observations ``N``.
        alpha: the level of the intervals is ``1 - alpha``.
        method: one sentence naming the estimator and its conventions.
    """

    periods: tuple[Any, ...]
    effects: tuple[float, ...]
    std_errors: tuple[float, ...]
    ci_lows: tuple[float, ...]
    ci_highs: tuple[float, ...]
    p_values: tuple[float, ...]
    covariance: tuple[tuple[float, ...], ...]
    reference_period: Any
    treatment_start: Any
    pre_periods: tuple[Any, ...]
    pre_trend_statistic: float
    pre_trend_df: tuple[int, int]
    pre_trend_p_value: float
    average_post_effect: float
    average_post_std_error: float
    df: int
    n_clusters: int
    n_observations: int
    alpha: float
    method: str


@dataclass(frozen=True)
class _ClusteredFit:
    """OLS coefficients and their CR1 covariance, from cell-level design rows."""

    coefficients: np.ndarray
    covariance: np.ndarray
    n_clusters: int
    n_observations: int


def _clustered_ols(
    test: str, design: np.ndarray, counts: np.ndarray, totals: np.ndarray, clusters: np.ndarray
) -> _ClusteredFit:
    """OLS of the observations on ``design`` (one row per cell, shared by its observations).

    ``X'X = sum_c n_c x_c x_c'`` and ``X'y = sum_c x_c S_c``; a cell's residuals sum to
    ``S_c - n_c x_c' b``, so cluster ``g``'s score ``sum_{i in g} x_i e_i`` is
    ``sum_{c in g} x_c (S_c - n_c x_c' b)``.
    """
    n_observations = int(counts.sum())
    n_coefficients = design.shape[1]
    # Both groups are observed (the callers check it), so there are at least 2 clusters.
    labels, cluster_index = np.unique(clusters, return_inverse=True)
    n_clusters = labels.size
    if n_observations <= n_coefficients:
        raise ValueError(
            f"{test} needs more observations than the model's {n_coefficients} coefficients; got "
            f"{n_observations}."
        )
    gram = design.T @ (counts[:, None] * design)
    coefficients = np.linalg.solve(gram, design.T @ totals)
    residual_sums = totals - counts * (design @ coefficients)
    scores = np.zeros((n_clusters, n_coefficients))
    np.add.at(scores, cluster_index, design * residual_sums[:, None])
    bread = np.linalg.inv(gram)
    correction = (
        n_clusters / (n_clusters - 1) * (n_observations - 1) / (n_observations - n_coefficients)
    )
    covariance = correction * bread @ (scores.T @ scores) @ bread
    return _ClusteredFit(coefficients, covariance, n_clusters, n_observations)


def _nonempty_cells(panel: ClusterPeriodSums) -> tuple[np.ndarray, ...]:
    counts = np.asarray(panel.n, dtype=float)
    keep = counts > 0
    # Cluster labels of any hashable type are coded by first appearance, for np.unique.
    codes: dict[Hashable, int] = {}
    cluster_codes = np.array([codes.setdefault(label, len(codes)) for label in panel.cluster])
    return (
        cluster_codes[keep],
        np.asarray(panel.treated, dtype=float)[keep],
        np.flatnonzero(keep),
        counts[keep],
        np.asarray(panel.total, dtype=float)[keep],
    )


def did_test(
    panel: ClusterPeriodSums,
    treatment_start: Any,
    *,
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
) -> DiDResult:
    """The 2 × 2 difference-in-differences effect with errors clustered by cluster.

    Periods before ``treatment_start`` are *pre*, the others *post* (several periods may fall on
    each side; they are pooled). The estimate is the coefficient of ``treated:post`` in the OLS
    of the observations ``y ~ treated * post`` (statsmodels ``ols("y ~ treated * post")``, Stata
    ``regress y i.treated##i.post, vce(cluster cluster)``), which is the difference of the
    four cells' mean changes ``(treated_post - treated_pre) - (control_post - control_pre)``.
    Its standard error is CR1 (``G / (G - 1) * (N - 1) / (N - K)`` with ``K = 4``), robust to
    any correlation of a cluster's observations over time (Bertrand, Duflo & Mullainathan 2004),
    and the reference is the t distribution with ``G - 1`` degrees of freedom (module docstring).

    The estimate is the average effect on the treated clusters' observations only under parallel
    trends; check them with :func:`event_study` when there are several pre-periods.

    Args:
        panel (ClusterPeriodSums): counts and sums per cluster × period.
        treatment_start (Any): the first period in which the treated clusters are treated,
            comparable with the panel's periods.
        alpha (float): the interval has level ``1 - alpha``.
        alternative (Literal["two-sided", "greater", "less"]): ``"greater"``: the effect is
            positive; the interval is one-sided for one-sided alternatives.

    Returns:
        DiDResult: the effect, its standard error, t statistic, df, p-value, interval, the four
        cell means and the counterfactual, and the counts.

    Raises:
        ValueError: if a group × pre/post cell has no observations, there are no more
            observations than the 4 coefficients, or ``alpha`` or ``alternative`` is invalid.

    References:
        Angrist & Pischke (2009), chapter 5; Bertrand, Duflo & Mullainathan (2004); Cameron &
        Miller (2015) (module docstring).

    Examples:
        >>> panel = ClusterPeriodSums(
        ...     cluster=["a", "a", "b", "b", "c", "c", "d", "d"],
        ...     treated=[True, True, True, True, False, False, False, False],
        ...     period=[0, 1, 0, 1, 0, 1, 0, 1],
        ...     n=[10, 10, 20, 20, 15, 15, 10, 10],
        ...     total=[52.0, 71.0, 98.0, 142.0, 60.0, 66.0, 41.0, 47.0],
        ... )
        >>> result = did_test(panel, treatment_start=1)
        >>> round(result.effect, 4), round(result.std_error, 4), result.df
        (1.62, 0.136, 3)
        >>> round(result.treated_post, 4), round(result.counterfactual, 4)
        (7.1, 5.48)
        >>> f"{result.p_value:.2e}"
        '1.27e-03'
    """
    check_alpha(alpha)
    words = sidedness(alternative)
    clusters, treated, rows, counts, totals = _nonempty_cells(panel)
    post = np.array([panel.period[row] >= treatment_start for row in rows], dtype=float)
    cell_means = {}
    for name, group, after in (
        ("control_pre", 0.0, 0.0),
        ("control_post", 0.0, 1.0),
        ("treated_pre", 1.0, 0.0),
        ("treated_post", 1.0, 1.0),
    ):
        in_cell = (treated == group) & (post == after)
        observations = counts[in_cell].sum()
        if observations == 0:
            raise ValueError(
                f"did_test needs observations of the {name.replace('_', ' ')} cell (group × "
                f"before/after treatment_start={treatment_start!r}); it has none. Check "
                f"treatment_start and that both groups are observed before and after it."
            )
        cell_means[name] = float(totals[in_cell].sum() / observations)
    design = np.column_stack([np.ones_like(post), treated, post, treated * post])
    fit = _clustered_ols("did_test", design, counts, totals, clusters)
    effect = float(fit.coefficients[3])
    std_error = math.sqrt(max(float(fit.covariance[3, 3]), 0.0))
    df = fit.n_clusters - 1
    inference = infer(effect, std_error, alpha=alpha, alternative=alternative, df=df)
    n_treated = len({int(c) for c, flag in zip(clusters, treated, strict=True) if flag})
    return DiDResult(
        effect=effect,
        std_error=std_error,
        statistic=inference.statistic,
        df=df,
        p_value=inference.p_value,
        ci_low=inference.ci_low,
        ci_high=inference.ci_high,
        counterfactual=(
            cell_means["treated_pre"] + cell_means["control_post"] - cell_means["control_pre"]
        ),
        n_clusters=fit.n_clusters,
        n_treated_clusters=n_treated,
        n_observations=fit.n_observations,
        method=(
            f"{words} t-test on the 2×2 difference-in-differences (OLS y ~ treated * post, "
            f"post from {treatment_start!r}), CR1 standard errors clustered by cluster "
            f"({fit.n_clusters} clusters, {n_treated} treated), t with {df} df"
        ),
        **cell_means,
    )


def event_study(
    panel: ClusterPeriodSums,
    treatment_start: Any,
    *,
    reference_period: Any = None,
    alpha: float = 0.05,
) -> EventStudyResult:
    """Effects period by period relative to a reference pre-period, and a parallel-trends check.

    Fits the OLS of the observations ``y ~ treated * C(period)`` with the reference period as
    the baseline (statsmodels ``ols("y ~ treated * C(period, Treatment(reference))")``, Stata
    ``regress y i.treated##ib<ref>.period, vce(cluster cluster)``): ``2 T`` coefficients for
    ``T`` periods. The coefficient of ``treated × period t`` is how much more the treated
    clusters' mean moved than the control clusters' from the reference period to ``t``: after
    the start, the effect at ``t`` (under parallel trends); before it, a placebo effect that is 0
    when the trends are parallel. Standard errors are CR1, clustered by cluster, with t
    intervals on ``G - 1`` degrees of freedom (module docstring).

    The parallel-trends check is the joint Wald test that the ``q`` pre-period coefficients
    (every period before ``treatment_start`` except the reference) are all 0, with their CR1
    covariance, as the F statistic ``W / q`` on ``(q, G - 1)`` degrees of freedom (statsmodels
    ``wald_test(use_f=True)``). It needs at least 2 pre-periods (``q >= 1``) and ``q <= G - 1``
    (the CR1 covariance has rank at most ``G - 1``); otherwise its values are ``nan`` and
    ``method`` says why. A non-significant check is not proof of parallel trends (it may lack
    power, Roth 2022): read the plotted pre-period effects and their intervals too.

    Args:
        panel (ClusterPeriodSums): counts and sums per cluster × period; every group must be
            observed in every period.
        treatment_start (Any): the first treated period, comparable with the panel's periods.
        reference_period (Any): the pre-period the effects are relative to; by default the last
            period before ``treatment_start``.
        alpha (float): the intervals have level ``1 - alpha`` (two-sided).

    Returns:
        EventStudyResult: per-period effects with intervals and p-values, their covariance, the
        parallel-trends test, the average post-period effect and the counts.

    Raises:
        ValueError: if no period precedes ``treatment_start`` or none follows it, the reference is
            not a pre-period of the panel, a group has no observations in some period, there are
            no more observations than coefficients, or ``alpha`` is invalid.

    References:
        Angrist & Pischke (2009), chapter 5 (module docstring).
        Roth, J. (2022). Pretest with caution: event-study estimates after testing for parallel
        trends. American Economic Review: Insights, 4(3), 305-322.

    Examples:
        >>> panel = ClusterPeriodSums(
        ...     cluster=["a"] * 3 + ["b"] * 3 + ["c"] * 3 + ["d"] * 3,
        ...     treated=[True] * 6 + [False] * 6,
        ...     period=[0, 1, 2] * 4,
        ...     n=[10] * 12,
        ...     total=[50.0, 52.0, 75.0, 40.0, 43.0, 61.0, 30.0, 31.0, 33.0, 45.0, 47.0, 46.0],
        ... )
        >>> result = event_study(panel, treatment_start=2)
        >>> result.periods, result.reference_period, result.pre_periods
        ((0, 1, 2), 1, (0,))
        >>> [round(effect, 3) for effect in result.effects]
        [-0.1, 0.0, 2.0]
        >>> round(result.pre_trend_statistic, 3), result.pre_trend_df
        (2.874, (1, 3))
        >>> round(result.pre_trend_p_value, 4)
        0.1886
    """
    check_alpha(alpha)
    clusters, treated, rows, counts, totals = _nonempty_cells(panel)
    cell_periods = [panel.period[row] for row in rows]
    periods = tuple(sorted(set(cell_periods)))
    before = [period for period in periods if period < treatment_start]
    after = [period for period in periods if not period < treatment_start]
    if not before or not after:
        raise ValueError(
            f"event_study needs periods both before and from treatment_start="
            f"{treatment_start!r}; the panel's periods with observations are {list(periods)}."
        )
    reference = before[-1] if reference_period is None else reference_period
    if reference not in before:
        raise ValueError(
            f"event_study: reference_period={reference_period!r} is not a period before "
            f"treatment_start={treatment_start!r} in the panel; choose one of {before}."
        )
    position = {period: index for index, period in enumerate(periods)}
    period_index = np.array([position[period] for period in cell_periods])
    for group, name in ((0.0, "control"), (1.0, "treated")):
        observed = set(period_index[treated == group].tolist())
        missing = [period for period in periods if position[period] not in observed]
        if missing:
            raise ValueError(
                f"event_study needs observations of the {name} group in every period; it has "
                f"none in {missing}. Drop those periods or pool them with a neighbour."
            )
    others = [period for period in periods if period != reference]
    indicators = np.column_stack(
        [(period_index == position[period]).astype(float) for period in others]
    )
    design = np.column_stack(
        [np.ones_like(treated), treated, indicators, treated[:, None] * indicators]
    )
    fit = _clustered_ols("event_study", design, counts, totals, clusters)
    first = 2 + len(others)
    coefficients = fit.coefficients[first:]
    covariance = fit.covariance[first:, first:]
    std_errors = np.sqrt(np.clip(np.diag(covariance), 0.0, None))
    df = fit.n_clusters - 1
    effect_by_period: dict[Any, tuple[float, float, float, float, float]] = {
        reference: (0.0, 0.0, 0.0, 0.0, math.nan)
    }
    for period, coefficient, std_error in zip(others, coefficients, std_errors, strict=True):
        inference = infer(
            float(coefficient), float(std_error), alpha=alpha, alternative="two-sided", df=df
        )
        effect_by_period[period] = (
            float(coefficient),
            float(std_error),
            inference.ci_low,
            inference.ci_high,
            inference.p_value,
        )
    pre_periods = tuple(period for period in before if period != reference)
    tested = [others.index(period) for period in pre_periods]
    n_tested = len(tested)
    statistic = p_value = math.nan
    if n_tested == 0:
        check = "no pre-period besides the reference, so parallel trends are not tested"
    elif n_tested > df:
        check = (
            f"parallel trends not tested: {n_tested} pre-period effects exceed the {df} "
            f"degrees of freedom of a covariance from {fit.n_clusters} clusters"
        )
    else:
        block = covariance[np.ix_(tested, tested)]
        values = coefficients[tested]
        try:
            wald = float(values @ np.linalg.solve(block, values))
        except np.linalg.LinAlgError:
            check = "parallel trends not tested: the pre-period covariance is singular"
        else:
            statistic = wald / n_tested
            p_value = float(special.fdtrc(n_tested, df, statistic))
            check = (
                f"parallel trends: joint Wald F-test of the {n_tested} pre-period effects, "
                f"F({n_tested}, {df})"
            )
    post_positions = [others.index(period) for period in after]
    weights = np.zeros(len(others))
    weights[post_positions] = 1.0 / len(post_positions)
    return EventStudyResult(
        periods=periods,
        effects=tuple(effect_by_period[period][0] for period in periods),
        std_errors=tuple(effect_by_period[period][1] for period in periods),
        ci_lows=tuple(effect_by_period[period][2] for period in periods),
        ci_highs=tuple(effect_by_period[period][3] for period in periods),
        p_values=tuple(effect_by_period[period][4] for period in periods),
        covariance=tuple(tuple(float(value) for value in row) for row in covariance),
        reference_period=reference,
        treatment_start=treatment_start,
        pre_periods=pre_periods,
        pre_trend_statistic=statistic,
        pre_trend_df=(n_tested, df),
        pre_trend_p_value=p_value,
        average_post_effect=float(weights @ coefficients),
        average_post_std_error=math.sqrt(max(float(weights @ covariance @ weights), 0.0)),
        df=df,
        n_clusters=fit.n_clusters,
        n_observations=fit.n_observations,
        alpha=alpha,
        method=(
            f"event study: OLS y ~ treated * C(period) relative to period {reference!r}, CR1 "
            f"standard errors clustered by cluster ({fit.n_clusters} clusters), two-sided "
            f"level-{1 - alpha:g} t intervals with {df} df; {check}"
        ),
    )
