"""Team-draft interleaving: per-request credit, preference, sign test and bootstrap interval.

**Input contract.** Team-draft interleaving merges the baseline's and the candidate's rankings
into one list per request, each shown item drafted by one model's *team*. Logs give, per shown
item, the request, the team that contributed the item and whether it was clicked;
:func:`team_draft_credit` reduces them to per-request click counts per team (one vectorised
``bincount``), which a warehouse ``GROUP BY request_id`` can also return directly. The analysis
(:func:`interleaving_test`) takes those per-request counts as two 1-D arrays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from exp_dagster.evaluation._common import (
    as_vector,
    bootstrap_ratios,
    check_same_length,
    cluster_index,
    cluster_totals,
    percentile_interval,
)
from exp_dagster.stats._common import check_alpha


@dataclass(frozen=True)
class TeamCredit:
    """Clicks credited to each team per request.

    Attributes:
        request_ids: the distinct requests, sorted.
        baseline_clicks: clicks on items the baseline contributed, per request.
        candidate_clicks: clicks on items the candidate contributed, per request.
    """

    request_ids: np.ndarray
    baseline_clicks: np.ndarray
    candidate_clicks: np.ndarray


def team_draft_credit(
    request_ids: npt.ArrayLike, teams: npt.ArrayLike, clicks: npt.ArrayLike
) -> TeamCredit:
    """Per-request clicks credited to each team from per-item team-draft logs.

    Args:
        request_ids (ArrayLike): the request of each shown item (any numpy-sortable ids).
        teams (ArrayLike): the team that contributed each shown item: ``"baseline"`` or
            ``"candidate"``.
        clicks (ArrayLike): clicks on each shown item (0/1, or a count).

    Returns:
        TeamCredit: the sorted distinct requests and each team's clicks per request.

    Raises:
        ValueError: if the arrays differ in length, a team is unknown, or a click is negative.

    References:
        Radlinski, F., Kurup, M., & Joachims, T. (2008). How Does Clickthrough Data Reflect
        Retrieval Quality? CIKM 2008.

    Examples:
        >>> credit = team_draft_credit(
        ...     ["q1", "q1", "q1", "q2", "q2"],
        ...     ["baseline", "candidate", "candidate", "candidate", "baseline"],
        ...     [1, 1, 1, 0, 0],
        ... )
        >>> credit.baseline_clicks, credit.candidate_clicks
        (array([1., 0.]), array([2., 0.]))
    """
    request = np.asarray(request_ids)
    team = np.asarray(teams)
    click = as_vector(clicks, "clicks")
    check_same_length(request_ids=request, teams=team, clicks=click)
    unknown = np.flatnonzero((team != "baseline") & (team != "candidate"))
    if unknown.size:
        raise ValueError(
            f"teams must be 'baseline' or 'candidate' for every shown item; row "
            f"{int(unknown[0])} is {team[unknown[0]].item()!r} ({unknown.size} such rows)."
        )
    if (click < 0.0).any() or not np.isfinite(click).all():
        raise ValueError("clicks must be non-negative click counts (0/1 per shown item).")
    uniques, index = np.unique(request, return_inverse=True)
    index = index.reshape(-1)
    is_candidate = team == "candidate"
    return TeamCredit(
        request_ids=uniques,
        baseline_clicks=np.bincount(
            index, weights=np.where(is_candidate, 0.0, click), minlength=len(uniques)
        ),
        candidate_clicks=np.bincount(
            index, weights=np.where(is_candidate, click, 0.0), minlength=len(uniques)
        ),
    )


@dataclass(frozen=True)
class InterleavingResult:
    """Team-draft interleaving preference for the candidate over the baseline.

    Attributes:
        preference: ``(wins + ties / 2) / n_clicked - 0.5`` over requests with a click, in
            ``[-0.5, 0.5]``; positive favours the candidate.
        ci_low: lower bound of the two-sided level ``1 - alpha`` percentile bootstrap interval of
            ``preference`` (requests, or clusters, resampled).
        ci_high: upper bound of that interval.
        win_rate: ``wins / (wins + losses)``, the candidate's share of decided requests.
        p_value: two-sided exact binomial sign test of ``wins`` among ``wins + losses`` against
            1/2; ties are left out.
        wins: clicked requests where the candidate's team got more clicks.
        losses: clicked requests where the baseline's team got more clicks.
        ties: clicked requests where both teams got the same clicks.
        n_requests: all requests given.
        n_without_clicks: requests without any click, which carry no preference and are left out.
        alpha: one minus the confidence level.
        method: one sentence naming the test and the interval.
    """

    preference: float
    ci_low: float
    ci_high: float
    win_rate: float
    p_value: float
    wins: int
    losses: int
    ties: int
    n_requests: int
    n_without_clicks: int
    alpha: float
    method: str


def sign_test_p_value(wins: int, losses: int) -> float:
    """Two-sided exact sign test: ``P(|Binomial(n, 1/2) - n/2| >= |wins - n/2|)``, ``n = w + l``.

    The binomial with ``p = 1/2`` is symmetric, so the two-sided p-value is twice the smaller
    tail, capped at 1 (1 when there is no decided request).

    Examples:
        >>> round(sign_test_p_value(15, 5), 4)
        0.0414
    """
    n = wins + losses
    if n == 0:
        return 1.0
    smaller = min(wins, losses)
    # Imported here: scipy.stats costs half a second that every run process would otherwise pay.
    from scipy import stats

    return float(min(1.0, 2.0 * stats.binom.cdf(smaller, n, 0.5)))


def interleaving_test(
    baseline_clicks: npt.ArrayLike,
    candidate_clicks: npt.ArrayLike,
    *,
    clusters: npt.ArrayLike | None = None,
    alpha: float = 0.05,
    n_bootstrap: int = 2000,
    seed: int = 0,
) -> InterleavingResult:
    """Preference, sign test and bootstrap interval of a team-draft interleaving experiment.

    Each request is a win for the candidate when its team got more clicks than the baseline's,
    a loss when fewer, a tie when equal with at least one click; requests without clicks carry
    no preference and are left out (Chapelle et al. 2012). The preference is
    ``(wins + ties / 2) / (wins + losses + ties) - 0.5``: 0 means no preference, positive
    favours the candidate. The sign test is the exact two-sided binomial test of the wins among
    decided requests (``wins + losses``) against 1/2. The interval resamples the clicked requests
    (or ``clusters`` of them, e.g. users) with replacement, seeded, and takes percentiles of the
    preference.

    Args:
        baseline_clicks (ArrayLike): clicks credited to the baseline's team, per request.
        candidate_clicks (ArrayLike): clicks credited to the candidate's team, same requests.
        clusters (ArrayLike | None): one cluster id per request; ``None``: requests independent.
        alpha (float): one minus the confidence level.
        n_bootstrap (int): bootstrap resamples.
        seed (int): seed of the bootstrap's ``numpy.random.default_rng``.

    Returns:
        InterleavingResult: preference with its interval, win rate, sign-test p-value, counts.

    Raises:
        ValueError: if the arrays differ in length, a click count is negative or not finite, or
            ``alpha`` or ``n_bootstrap`` is invalid.

    References:
        Radlinski, F., Kurup, M., & Joachims, T. (2008). How Does Clickthrough Data Reflect
        Retrieval Quality? CIKM 2008.
        Chapelle, O., Joachims, T., Radlinski, F., & Yue, Y. (2012). Large-Scale Validation and
        Analysis of Interleaved Search Evaluation. ACM Transactions on Information Systems,
        30(1), 6.

    Examples:
        >>> baseline = [0, 1, 0, 2, 0, 1, 0, 0, 1, 0]
        >>> candidate = [1, 0, 1, 2, 0, 2, 1, 1, 0, 1]
        >>> result = interleaving_test(baseline, candidate)
        >>> result.wins, result.losses, result.ties, result.n_without_clicks
        (6, 2, 1, 1)
        >>> round(result.preference, 4), round(result.p_value, 4)
        (0.2222, 0.2891)
    """
    check_alpha(alpha)
    base = as_vector(baseline_clicks, "baseline_clicks")
    cand = as_vector(candidate_clicks, "candidate_clicks")
    check_same_length(baseline_clicks=base, candidate_clicks=cand)
    for name, array in (("baseline_clicks", base), ("candidate_clicks", cand)):
        if not np.isfinite(array).all() or (array < 0.0).any():
            raise ValueError(f"{name} must be non-negative click counts per request.")
    clicked = (base + cand) > 0.0
    # 1 for a candidate win, 1/2 for a tie, 0 for a loss, over clicked requests.
    outcome = np.where(cand > base, 1.0, np.where(cand < base, 0.0, 0.5))[clicked]
    wins = int((outcome == 1.0).sum())
    losses = int((outcome == 0.0).sum())
    ties = int((outcome == 0.5).sum())
    n_clicked = outcome.size
    preference = float(outcome.mean() - 0.5) if n_clicked else math.nan
    cluster_ids = None
    if clusters is not None:
        cluster_ids = np.asarray(clusters)
        if cluster_ids.shape != base.shape:
            raise ValueError(
                f"clusters must have one id per request ({base.size} requests); got shape "
                f"{cluster_ids.shape}."
            )
        cluster_ids = cluster_ids[clicked]
    low = high = math.nan
    if n_clicked:
        index, n_clusters = cluster_index(cluster_ids, n_clicked)
        sums, counts = cluster_totals(outcome[:, None], np.ones(n_clicked), index, n_clusters)
        replicates = bootstrap_ratios(sums, counts, n_bootstrap=n_bootstrap, seed=seed)[:, 0]
        low, high = percentile_interval(replicates - 0.5, alpha)
    return InterleavingResult(
        preference=preference,
        ci_low=low,
        ci_high=high,
        win_rate=wins / (wins + losses) if wins + losses else math.nan,
        p_value=sign_test_p_value(wins, losses),
        wins=wins,
        losses=losses,
        ties=ties,
        n_requests=int(base.size),
        n_without_clicks=int(base.size - n_clicked),
        alpha=alpha,
        method=(
            f"team-draft preference over clicked requests (ties count 1/2); exact two-sided "
            f"sign test of wins against losses; {100 * (1 - alpha):g}% percentile interval "
            f"from {n_bootstrap} bootstrap resamples (seed {seed})"
        ),
    )
