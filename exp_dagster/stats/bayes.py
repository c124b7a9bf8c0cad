"""Bayesian summary of an effect estimate: normal-normal posterior, P(better), expected loss;
and the exact Beta-Binomial model of two proportions (:func:`beta_binomial_summary`).

The effect ``θ`` (absolute ``treatment - control`` or relative lift, whichever scale the caller
gives: every output is on that scale) is summarised by its estimate ``θ̂`` and standard error
``se`` through the large-sample likelihood ``θ̂ ~ N(θ, se²)``, ``se`` treated as known. With a
flat prior the posterior is ``N(θ̂, se²)``, so the credible interval is numerically the normal
confidence interval and ``prob_better`` is one minus the one-sided p-value; a normal prior shrinks
the estimate towards the prior mean.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

from scipy import special

from exp_dagster.stats._common import confidence_interval, critical_value

Direction = Literal["increase", "decrease"]
"""Which way the metric is better: ``"increase"`` when a higher value is better."""

DIRECTIONS: tuple[str, ...] = get_args(Direction)

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


@dataclass(frozen=True)
class BayesianSummary:
    """Posterior summary of an effect ``θ`` under a normal likelihood and a flat or normal prior.

    All values are on the scale of the estimate given (absolute effect or relative lift).

    Attributes:
        posterior_mean: the posterior mean of ``θ``.
        posterior_sd: the posterior standard deviation of ``θ`` (0 when ``std_error`` is 0).
        credible_low: lower bound of the equal-tailed credible interval: the
            ``(1 - credible_level) / 2`` posterior quantile.
        credible_high: upper bound, the ``(1 + credible_level) / 2`` posterior quantile.
        credible_level: posterior probability of the credible interval, e.g. 0.95.
        prob_better: posterior probability that the treatment is better than control:
            ``P(θ > 0)`` for an ``"increase"`` metric, ``P(θ < 0)`` for a ``"decrease"`` one.
        expected_loss: posterior expected loss of shipping the treatment, ``E[max(0, harm)]`` with
            ``harm = -θ`` (``"increase"``) or ``θ`` (``"decrease"``): the average amount by which
            the treatment is worse, counting 0 where it is better; same units as the estimate.
        direction: ``"increase"`` or ``"decrease"``, as given.
        prior: the prior, e.g. ``"flat (improper)"`` or ``"normal(mean=0, sd=0.05)"``.
        method: one sentence naming the model and conventions.
    """

    posterior_mean: float
    posterior_sd: float
    credible_low: float
    credible_high: float
    credible_level: float
    prob_better: float
    expected_loss: float
    direction: str
    prior: str
    method: str


def _check_inputs(
    estimate: float,
    std_error: float,
    direction: str,
    prior_mean: float,
    prior_sd: float | None,
    credible_level: float,
) -> None:
    if direction not in DIRECTIONS:
        options = ", ".join(repr(d) for d in DIRECTIONS)
        raise ValueError(f"direction must be one of {options}; got {direction!r}.")
    if not 0.0 < credible_level < 1.0:
        raise ValueError(
            f"credible_level must be strictly between 0 and 1, e.g. 0.95; got {credible_level!r}."
        )
    if math.isinf(estimate):
        raise ValueError(f"The estimate must be finite (or nan when unavailable); got {estimate}.")
    if not (math.isnan(std_error) or 0.0 <= std_error < math.inf):
        raise ValueError(
            f"The standard error must be finite and non-negative (or nan when unavailable); got "
            f"{std_error}."
        )
    if not math.isfinite(prior_mean):
        raise ValueError(f"prior_mean must be a finite number; got {prior_mean}.")
    if prior_sd is not None and not 0.0 < prior_sd < math.inf:
        raise ValueError(
            f"prior_sd must be positive and finite; got {prior_sd}. Use prior_sd=None for the "
            f"flat (improper) prior."
        )


def _normal_tail_summary(harm_mean: float, sd: float) -> tuple[float, float]:
    """``(P(harm < 0), E[max(0, harm)])`` for ``harm ~ N(harm_mean, sd²)``; ``sd = 0`` is a point.

    ``E[max(0, H)] = h Φ(h / s) + s φ(h / s)`` for ``H ~ N(h, s²)`` (integrate ``x`` times the
    normal density over ``x > 0``). At a point mass at 0 ``P(harm < 0)`` is taken as 1/2, the limit
    as ``sd -> 0`` and the value that keeps ``prob_better = 1 - one-sided p-value`` (the package's
    z statistic of a zero effect with zero standard error is 0).
    """
    if sd == 0.0:
        if harm_mean == 0.0:
            return 0.5, 0.0
        return (1.0 if harm_mean < 0.0 else 0.0), max(0.0, harm_mean)
    z = harm_mean / sd
    prob_better = float(special.ndtr(-z))
    density = _INV_SQRT_2PI * math.exp(-0.5 * z * z)
    # Far in the lower tail the two terms nearly cancel; the loss is non-negative by definition.
    expected_loss = max(0.0, harm_mean * float(special.ndtr(z)) + sd * density)
    return prob_better, expected_loss


def bayesian_summary(
    estimate: float,
    std_error: float,
    *,
    direction: Direction = "increase",
    prior_mean: float = 0.0,
    prior_sd: float | None = None,
    credible_level: float = 0.95,
) -> BayesianSummary:
    """Posterior of an effect from its estimate and standard error (normal-normal model).

    Model: ``θ̂ | θ ~ N(θ, se²)`` with ``se`` known (the test's standard error of the estimate, on
    the estimate's scale), and either

    * ``prior_sd=None``: the improper flat prior, posterior ``N(θ̂, se²)``; or
    * ``θ ~ N(prior_mean, prior_sd²)``: the conjugate posterior ``N(μ, s²)`` with precision
      ``1 / s² = 1 / prior_sd² + 1 / se²`` and precision-weighted mean
      ``μ = s² (prior_mean / prior_sd² + θ̂ / se²)``, computed as
      ``μ = θ̂ + se² / (prior_sd² + se²) (prior_mean - θ̂)`` so that ``se = 0`` is exact.

    The credible interval is equal-tailed, ``μ -/+ z s`` with ``z`` the ``(1 + level) / 2``
    standard normal quantile. With ``harm = -θ`` for ``"increase"`` metrics and ``θ`` for
    ``"decrease"`` ones, so ``harm ~ N(h, s²)`` with ``h = -μ`` or ``μ``:
    ``prob_better = P(harm < 0) = Φ(-h / s)`` and
    ``expected_loss = E[max(0, harm)] = h Φ(h / s) + s φ(h / s)``; for ``"increase"`` this is
    ``s φ(μ / s) - μ Φ(-μ / s)``. ``se = 0`` means no sampling noise: the posterior is the point
    ``θ̂`` whatever the prior (``prob_better`` 1 or 0, and 1/2 when ``θ̂ = 0``). A ``nan`` estimate or
    standard error (e.g. the relative lift of a zero control mean) gives ``nan`` everywhere.

    Args:
        estimate (float): the effect estimate ``θ̂`` (absolute effect or relative lift).
        std_error (float): its standard error, ``>= 0``, on the same scale.
        direction (Literal["increase", "decrease"]): ``"increase"`` when a higher metric is
            better (treatment better means ``θ > 0``), ``"decrease"`` when lower is better.
        prior_mean (float): mean of the normal prior on ``θ``; ignored for the flat prior.
        prior_sd (float | None): sd of the normal prior on ``θ`` (on the estimate's scale, e.g.
            0.05 for "lifts are typically within a few percent"); ``None`` for the flat prior.
        credible_level (float): posterior probability of the credible interval, in ``(0, 1)``.

    Returns:
        BayesianSummary: posterior mean and sd, credible interval, probability that the treatment
        is better, expected loss of shipping it, and a description of the prior.

    Raises:
        ValueError: if ``direction`` is unknown, ``credible_level`` is not in ``(0, 1)``, the
            estimate is infinite, the standard error is negative or infinite, ``prior_mean`` is not
            finite, or ``prior_sd`` is not positive and finite.

    References:
        Gelman, A., Carlin, J. B., Stern, H. S., Dunson, D. B., Vehtari, A., & Rubin, D. B.
        (2013). Bayesian Data Analysis (3rd ed.), ch. 2.5: normal model with known variance.

        Deng, A. (2015). Objective Bayesian Two Sample Hypothesis Testing for Online Controlled
        Experiments. WWW 2015 Companion.

        Stucchio, C. (2015). Bayesian A/B Testing at VWO. VWO whitepaper (expected loss as the
        decision criterion).

    Examples:
        >>> flat = bayesian_summary(0.02, 0.01)
        >>> round(flat.credible_low, 4), round(flat.credible_high, 4)
        (0.0004, 0.0396)
        >>> round(flat.prob_better, 4), round(flat.expected_loss, 6)
        (0.9772, 8.5e-05)
        >>> shrunk = bayesian_summary(0.02, 0.01, prior_sd=0.01)
        >>> round(shrunk.posterior_mean, 4), round(shrunk.posterior_sd, 4), shrunk.prior
        (0.01, 0.0071, 'normal(mean=0, sd=0.01)')
        >>> round(bayesian_summary(0.02, 0.01, direction="decrease").prob_better, 4)
        0.0228
    """
    _check_inputs(estimate, std_error, direction, prior_mean, prior_sd, credible_level)
    if prior_sd is None:
        prior = "flat (improper)"
    else:
        prior = f"normal(mean={prior_mean:g}, sd={prior_sd:g})"
    loss_of = "-theta" if direction == "increase" else "theta"
    better = "theta > 0" if direction == "increase" else "theta < 0"
    method = (
        f"normal-normal posterior with likelihood N(theta, se^2) and {prior} prior; "
        f"equal-tailed {100 * credible_level:g}% credible interval; prob_better = P({better}); "
        f"expected_loss = E[max(0, {loss_of})]"
    )
    if math.isnan(estimate) or math.isnan(std_error):
        nan = math.nan
        return BayesianSummary(
            nan, nan, nan, nan, credible_level, nan, nan, direction, prior, method
        )
    if prior_sd is None:
        posterior_mean, posterior_sd = estimate, std_error
    else:
        shrinkage = std_error**2 / (prior_sd**2 + std_error**2)
        posterior_mean = estimate + shrinkage * (prior_mean - estimate)
        posterior_sd = prior_sd * std_error / math.hypot(prior_sd, std_error)
    crit = critical_value(1.0 - credible_level, "two-sided")
    low, high = confidence_interval(posterior_mean, posterior_sd, crit, "two-sided")
    harm_mean = -posterior_mean if direction == "increase" else posterior_mean
    prob_better, expected_loss = _normal_tail_summary(harm_mean, posterior_sd)
    return BayesianSummary(
        posterior_mean=posterior_mean,
        posterior_sd=posterior_sd,
        credible_low=low,
        credible_high=high,
        credible_level=credible_level,
        prob_better=prob_better,
        expected_loss=expected_loss,
        direction=direction,
        prior=prior,
        method=method,
    )


# ── Beta-Binomial: proportions with conjugate Beta priors ─────────────────────────────────────


@dataclass(frozen=True)
class BetaBinomialSummary:
    """Posterior of two proportions under independent Beta priors (binomial likelihoods).

    Attributes:
        posterior_control: ``(a, b)`` of the control proportion's Beta posterior.
        posterior_treatment: ``(a, b)`` of the treatment proportion's Beta posterior.
        mean_control: posterior mean of the control proportion, ``a / (a + b)``.
        mean_treatment: posterior mean of the treatment proportion.
        credible_control: equal-tailed credible interval of the control proportion.
        credible_treatment: equal-tailed credible interval of the treatment proportion.
        credible_level: the intervals' posterior probability, e.g. 0.95.
        prob_better: posterior probability that the treatment is better: ``P(p_t > p_c)`` when
            a higher proportion is better (``direction="increase"``), ``P(p_t < p_c)`` else.
        expected_loss: posterior expected loss of shipping the treatment, on the proportion's
            scale: ``E[max(0, p_c - p_t)]`` (increase) or ``E[max(0, p_t - p_c)]`` (decrease).
        expected_loss_control: the same loss of keeping the control instead.
        direction: ``"increase"`` or ``"decrease"``.
        method: one sentence naming the model and its prior.
    """

    posterior_control: tuple[float, float]
    posterior_treatment: tuple[float, float]
    mean_control: float
    mean_treatment: float
    credible_control: tuple[float, float]
    credible_treatment: tuple[float, float]
    credible_level: float
    prob_better: float
    expected_loss: float
    expected_loss_control: float
    direction: str
    method: str


def _prob_greater(x: tuple[float, float], y: tuple[float, float]) -> float:
    """``P(X > Y)`` for independent ``X ~ Beta(*x)``, ``Y ~ Beta(*y)``: ``∫ f_X(t) F_Y(t) dt``,
    by adaptive quadrature over the range holding all but 1e-15 of ``X``'s mass on each side."""
    from scipy import integrate, stats  # here, not at the top: see stats/__init__ (lazy scipy)

    beta_x, beta_y = stats.beta(*x), stats.beta(*y)
    low, high = float(beta_x.ppf(1e-15)), float(beta_x.isf(1e-15))
    # The integrand is concentrated where both densities live; give quad the bulk's landmarks.
    marks = sorted(
        {float(v) for v in (beta_x.median(), beta_y.median(), beta_y.ppf(0.01), beta_y.isf(0.01))}
    )
    points = [m for m in marks if low < m < high]
    value, _ = integrate.quad(
        lambda t: beta_x.pdf(t) * beta_y.cdf(t),
        low,
        high,
        points=points or None,
        limit=200,
        epsabs=1e-13,
        epsrel=1e-11,
    )
    return float(min(1.0, max(0.0, value)))


def _expected_shortfall(x: tuple[float, float], y: tuple[float, float]) -> float:
    """``E[max(0, X - Y)]`` for independent Betas, by the identity
    ``E[X 1{X > Y}] - E[Y 1{X > Y}] = E[X] P(X⁺ > Y) - E[Y] P(X > Y⁺)`` with ``X⁺ ~ Beta(a+1, b)``
    (size-biased), as in Stucchio (2015)."""
    (ax, bx), (ay, by) = x, y
    mean_x, mean_y = ax / (ax + bx), ay / (ay + by)
    value = mean_x * _prob_greater((ax + 1.0, bx), y) - mean_y * _prob_greater(x, (ay + 1.0, by))
    return max(0.0, value)


def beta_binomial_summary(
    successes_control: int,
    n_control: int,
    successes_treatment: int,
    n_treatment: int,
    *,
    prior_a: float = 1.0,
    prior_b: float = 1.0,
    credible_level: float = 0.95,
    direction: Direction = "increase",
) -> BetaBinomialSummary:
    """Beta-Binomial posteriors of two proportions: credible intervals, P(better), expected loss.

    Each arm's proportion gets an independent ``Beta(prior_a, prior_b)`` prior (default
    ``Beta(1, 1)``, uniform) and a binomial likelihood, so its posterior is
    ``Beta(prior_a + successes, prior_b + n - successes)`` exactly, with no normal
    approximation (unlike :func:`bayesian_summary`): the model of GrowthBook's and many
    tools' Bayesian proportions, right for small samples and rare events. ``prob_better`` and
    the expected losses are computed by numerical integration over the posteriors (accurate
    to about 1e-10), not by sampling.

    Args:
        successes_control (int): units with the event in control.
        n_control (int): units in control.
        successes_treatment (int): units with the event in treatment.
        n_treatment (int): units in treatment.
        prior_a (float): the Beta prior's first parameter (prior successes), positive.
        prior_b (float): the Beta prior's second parameter (prior failures), positive.
        credible_level (float): the credible intervals' probability, in ``(0, 1)``.
        direction (Literal["increase", "decrease"]): which way the proportion is better.

    Returns:
        BetaBinomialSummary: both posteriors, their intervals, P(better) and expected losses.

    Raises:
        ValueError: if a count is outside ``[0, n]``, an arm has no units, a prior parameter is
            not positive, or ``credible_level`` or ``direction`` is invalid.

    References:
        Gelman, A., et al. (2013). Bayesian Data Analysis (3rd ed.), section 2.4 (the
        Beta-Binomial model). CRC Press.
        Stucchio, C. (2015). Bayesian A/B Testing at VWO (the expected loss).

    Examples:
        >>> result = beta_binomial_summary(100, 1000, 130, 1000)
        >>> result.posterior_treatment, round(result.mean_treatment, 4)
        ((131.0, 871.0), 0.1307)
        >>> round(result.prob_better, 4), f"{result.expected_loss:.2e}"
        (0.9822, '9.24e-05')
    """
    for arm, successes, n in (
        ("control", successes_control, n_control),
        ("treatment", successes_treatment, n_treatment),
    ):
        if n < 1:
            raise ValueError(f"n_{arm} must be at least 1; got {n}.")
        if not 0 <= successes <= n:
            raise ValueError(
                f"successes_{arm} must be between 0 and n_{arm}={n} (a count of units with the "
                f"event); got {successes}."
            )
    if not (prior_a > 0.0 and prior_b > 0.0 and math.isfinite(prior_a + prior_b)):
        raise ValueError(
            f"The Beta prior's parameters must be positive and finite (1, 1 is uniform); got "
            f"prior_a={prior_a!r}, prior_b={prior_b!r}."
        )
    if not 0.0 < credible_level < 1.0:
        raise ValueError(f"credible_level must be in (0, 1), e.g. 0.95; got {credible_level!r}.")
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be 'increase' or 'decrease'; got {direction!r}.")
    control = (prior_a + successes_control, prior_b + n_control - successes_control)
    treatment = (prior_a + successes_treatment, prior_b + n_treatment - successes_treatment)
    tail = (1.0 - credible_level) / 2.0

    def interval(posterior: tuple[float, float]) -> tuple[float, float]:
        from scipy import stats

        beta = stats.beta(*posterior)
        return float(beta.ppf(tail)), float(beta.isf(tail))

    if direction == "increase":
        prob_better = _prob_greater(treatment, control)
        loss, loss_control = (
            _expected_shortfall(control, treatment),
            _expected_shortfall(treatment, control),
        )
    else:
        prob_better = _prob_greater(control, treatment)
        loss, loss_control = (
            _expected_shortfall(treatment, control),
            _expected_shortfall(control, treatment),
        )
    return BetaBinomialSummary(
        posterior_control=control,
        posterior_treatment=treatment,
        mean_control=control[0] / sum(control),
        mean_treatment=treatment[0] / sum(treatment),
        credible_control=interval(control),
        credible_treatment=interval(treatment),
        credible_level=credible_level,
        prob_better=prob_better,
        expected_loss=loss,
        expected_loss_control=loss_control,
        direction=direction,
        method=(
            f"Beta-Binomial, independent Beta({prior_a:g}, {prior_b:g}) priors; equal-tailed "
            f"{100 * credible_level:g}% credible intervals; P(better) and expected loss by "
            f"numerical integration"
        ),
    )
