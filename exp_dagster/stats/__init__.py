"""The statistics engine of exp_dagster: A/B tests on sufficient statistics.

Every test takes a few numbers per arm (counts, sums, sums of squares and cross-products) that any
warehouse computes with one ``GROUP BY variant``, and returns an :class:`EffectEstimate`: the arm
summaries, the absolute effect ``treatment - control`` and the relative lift
``treatment / control - 1`` with confidence intervals, the test statistic and the p-value. The
functions are pure and deterministic and depend only on numpy and scipy, so a data scientist can
call them in a notebook on numbers from any source and get exactly what the pipeline reports.

* :func:`welch_test`: means (Welch's t-test, unequal variances).
* :func:`two_proportion_test`: proportions (z-test, pooled p-value, unpooled Wald interval).
* :func:`ratio_test`: ratio metrics such as clicks per impression (delta method at the unit).
* :func:`cuped_test`: means with a pre-period covariate (CUPED, then Welch).
* :func:`quantile_test`: quantiles of clustered observations (Deng-Knoblich-Lu interval).
* :func:`srm_test`: sample ratio mismatch (chi-square against the planned weights).

Conventions shared by all tests: ``alternative`` is ``"two-sided"``, ``"greater"`` (the
alternative is ``treatment - control > 0``) or ``"less"``; intervals have level ``1 - alpha`` and
are one-sided for one-sided alternatives (the other bound infinite), consistent with the p-value;
variances use ``ddof=1``; the relative lift's interval is by the delta method on the natural scale
with the same critical value as the absolute interval, and is ``nan`` when the control summary is 0.

Examples:
    >>> from exp_dagster.stats import Moments, welch_test
    >>> control = Moments.from_values([3.1, 2.9, 3.4, 3.0, 2.8, 3.3])
    >>> treatment = Moments.from_values([3.6, 3.2, 3.9, 3.4, 3.5, 3.8])
    >>> result = welch_test(control, treatment)
    >>> round(result.abs_effect, 4), round(result.rel_effect, 4), round(result.p_value, 4)
    (0.4833, 0.1568, 0.0067)
"""

from __future__ import annotations

from exp_dagster.stats._common import Alternative
from exp_dagster.stats.cuped import cuped_test
from exp_dagster.stats.effects import EffectEstimate, relative_lift
from exp_dagster.stats.means import welch_test
from exp_dagster.stats.moments import CovariateMoments, Moments, RatioMoments
from exp_dagster.stats.proportions import two_proportion_test
from exp_dagster.stats.quantile import QuantileArm, quantile_from_histogram, quantile_test
from exp_dagster.stats.ratio import ratio_test
from exp_dagster.stats.srm import SRMResult, srm_test

__all__ = [
    "Alternative",
    "CovariateMoments",
    "EffectEstimate",
    "Moments",
    "QuantileArm",
    "RatioMoments",
    "SRMResult",
    "cuped_test",
    "quantile_from_histogram",
    "quantile_test",
    "ratio_test",
    "relative_lift",
    "srm_test",
    "two_proportion_test",
    "welch_test",
]
