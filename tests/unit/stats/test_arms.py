from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.proportion import proportion_confint
from statsmodels.stats.weightstats import DescrStatsW

from exp_dagster.stats import Moments, mean_interval, proportion_interval

STATSMODELS = {
    "wilson": "wilson",
    "wald": "normal",
    "clopper-pearson": "beta",
    "jeffreys": "jeffreys",
}


@pytest.mark.parametrize("method", list(STATSMODELS))
@pytest.mark.parametrize(("successes", "n"), [(0, 40), (3, 40), (20, 40), (40, 40), (137, 10_000)])
@pytest.mark.parametrize("alpha", [0.05, 0.1])
def test_proportion_intervals_match_statsmodels(
    method: str, successes: int, n: int, alpha: float
) -> None:
    low, high = proportion_interval(successes, n, alpha=alpha, method=method)  # type: ignore[arg-type]
    ref_low, ref_high = proportion_confint(successes, n, alpha=alpha, method=STATSMODELS[method])
    assert low == pytest.approx(max(0.0, ref_low), abs=1e-12)
    assert high == pytest.approx(min(1.0, ref_high), abs=1e-12)


def test_wilson_covers_where_wald_does_not() -> None:
    # Coverage computed exactly over every outcome of n = 30 at p = 0.05.
    from scipy import stats

    n, p = 30, 0.05
    pmf = stats.binom.pmf(np.arange(n + 1), n, p)

    def coverage(method: str) -> float:
        return sum(
            pmf[k]
            for k in range(n + 1)
            if proportion_interval(k, n, method=method)[0]  # type: ignore[arg-type]
            <= p
            <= proportion_interval(k, n, method=method)[1]  # type: ignore[arg-type]
        )

    assert coverage("wald") < 0.8
    assert coverage("wilson") > 0.93
    assert coverage("clopper-pearson") >= 0.95


def test_mean_interval_matches_statsmodels() -> None:
    values = np.random.default_rng(2).lognormal(2.0, 1.0, 75)
    low, high = mean_interval(Moments.from_values(values), alpha=0.1)
    ref_low, ref_high = DescrStatsW(values).tconfint_mean(alpha=0.1)
    assert low == pytest.approx(ref_low, rel=1e-10)
    assert high == pytest.approx(ref_high, rel=1e-10)


def test_bad_inputs_are_explained() -> None:
    with pytest.raises(ValueError, match="between 0 and n"):
        proportion_interval(5, 4)
    with pytest.raises(ValueError, match="method must be one of"):
        proportion_interval(1, 4, method="agresti")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least 2 units"):
        mean_interval(Moments(n=1, sum_y=1.0, sum_y2=1.0))
