"""Population stability index (PSI): has a score's or feature's distribution shifted?

**Input contract.** Either raw values (a reference sample, e.g. the pre-period's model scores,
and a current sample, e.g. one experiment day's) as 1-D arrays, binned here on the reference's
quantiles; or counts per bin that a warehouse ``GROUP BY bin`` returns
(:func:`psi_from_counts`), which is how a categorical feature is compared (one bin per value).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt

from exp_dagster.evaluation._common import as_vector, check_finite

DriftStatus = Literal["stable", "moderate", "major"]
"""PSI below 0.1, from 0.1 to below 0.25, and 0.25 or more (the industry rule of thumb)."""

DRIFT_STATUSES: tuple[str, ...] = get_args(DriftStatus)

PSIBinning = Literal["quantile", "uniform"]
"""Bin edges from the reference's quantiles (equal reference counts) or equal widths."""

PSI_BINNINGS: tuple[str, ...] = get_args(PSIBinning)

MODERATE_SHIFT = 0.1
"""PSI at or above which a distribution has shifted moderately (worth a look)."""

MAJOR_SHIFT = 0.25
"""PSI at or above which a distribution has shifted majorly (investigate before trusting it)."""


@dataclass(frozen=True)
class PSIResult:
    """Population stability index of a current sample against a reference, bin by bin.

    Attributes:
        psi: ``sum_b (current_b - reference_b) ln(current_b / reference_b)`` over the bins'
            shares (floored at ``floor``), non-negative.
        status: ``"stable"`` (PSI < 0.1), ``"moderate"`` (0.1 <= PSI < 0.25) or ``"major"``.
        message: one sentence stating the PSI, the status and what to do.
        edges: the bin edges, ``len(reference_share) + 1`` of them (``-inf`` and ``+inf``
            outside, so every value is binned); empty for :func:`psi_from_counts`.
        reference_share: each bin's share of the reference sample.
        current_share: each bin's share of the current sample.
        contributions: each bin's term of the sum, for showing which bins moved.
        n_reference: values (or the total count) in the reference sample.
        n_current: values (or the total count) in the current sample.
        floor: the share given to an empty bin so that the logarithm is finite.
    """

    psi: float
    status: str
    message: str
    edges: tuple[float, ...]
    reference_share: tuple[float, ...]
    current_share: tuple[float, ...]
    contributions: tuple[float, ...]
    n_reference: int
    n_current: int
    floor: float


def drift_status(psi: float) -> DriftStatus:
    """The status of a PSI by the thresholds :data:`MODERATE_SHIFT` and :data:`MAJOR_SHIFT`.

    Examples:
        >>> drift_status(0.05), drift_status(0.1), drift_status(0.3)
        ('stable', 'moderate', 'major')
    """
    if psi >= MAJOR_SHIFT:
        return "major"
    if psi >= MODERATE_SHIFT:
        return "moderate"
    return "stable"


def psi_from_counts(
    reference_counts: npt.ArrayLike,
    current_counts: npt.ArrayLike,
    *,
    floor: float = 1e-4,
    edges: tuple[float, ...] = (),
) -> PSIResult:
    """PSI from the counts of a reference and a current sample in the same bins.

    Each sample's counts become shares; a share below ``floor`` (an empty bin) is raised to
    ``floor`` so that ``ln`` stays finite (the shares are not renormalised: ``floor`` is small).
    ``PSI = sum_b (c_b - r_b) ln(c_b / r_b)``, the symmetrised Kullback-Leibler divergence
    ``KL(c || r) + KL(r || c)`` of the binned distributions. Thresholds: below 0.1 stable, 0.1 to
    0.25 a moderate shift, 0.25 or more a major shift (Siddiqi 2006). PSI is a descriptive
    check with no sampling distribution here: with small samples it is noisy and biased upward,
    so read it with the counts.

    Args:
        reference_counts (ArrayLike): count per bin in the reference sample.
        current_counts (ArrayLike): count per bin in the current sample, same bins.
        floor (float): the minimum share of a bin, in ``(0, 1)``.
        edges (tuple[float, ...]): the bins' edges, stored in the result (optional).

    Returns:
        PSIResult: the PSI, its status and a sentence, and the bins' shares and contributions.

    Raises:
        ValueError: if the counts differ in length, are negative or not finite, a sample is
            empty, or ``floor`` is not in ``(0, 1)``.

    References:
        Siddiqi, N. (2006). Credit Risk Scorecards: Developing and Implementing Intelligent
        Credit Scoring. Wiley.
        Yurdakul, B. (2018). Statistical Properties of Population Stability Index. PhD thesis,
        Western Michigan University.

    Examples:
        >>> result = psi_from_counts([25, 25, 25, 25], [10, 20, 30, 40])
        >>> round(result.psi, 4), result.status
        (0.2282, 'moderate')
    """
    reference = as_vector(reference_counts, "reference_counts")
    current = as_vector(current_counts, "current_counts")
    if reference.shape != current.shape:
        raise ValueError(
            f"reference_counts and current_counts must count the same bins; got "
            f"{reference.size} and {current.size} bins."
        )
    for name, counts in (("reference_counts", reference), ("current_counts", current)):
        check_finite(counts, name)
        if (counts < 0.0).any():
            raise ValueError(f"{name} must be non-negative counts per bin.")
        if counts.sum() <= 0.0:
            raise ValueError(f"{name} is empty: PSI needs values in both samples.")
    if not 0.0 < floor < 1.0:
        raise ValueError(f"floor must be a small share in (0, 1), e.g. 1e-4; got {floor!r}.")
    reference_share = np.maximum(reference / reference.sum(), floor)
    current_share = np.maximum(current / current.sum(), floor)
    contributions = (current_share - reference_share) * np.log(current_share / reference_share)
    psi = float(contributions.sum())
    status = drift_status(psi)
    advice = {
        "stable": "no action needed",
        "moderate": "look at the bins that moved before relying on offline estimates",
        "major": (
            "the population changed: investigate before trusting offline or counterfactual "
            "estimates computed on the reference"
        ),
    }[status]
    message = (
        f"PSI {psi:.3f} ({status} shift; thresholds {MODERATE_SHIFT:g} and {MAJOR_SHIFT:g}): "
        f"{advice}."
    )
    return PSIResult(
        psi=psi,
        status=status,
        message=message,
        edges=tuple(float(edge) for edge in edges),
        reference_share=tuple(reference_share.tolist()),
        current_share=tuple(current_share.tolist()),
        contributions=tuple(contributions.tolist()),
        n_reference=int(reference.sum()),
        n_current=int(current.sum()),
        floor=floor,
    )


def population_stability_index(
    reference: npt.ArrayLike,
    current: npt.ArrayLike,
    *,
    n_bins: int = 10,
    binning: PSIBinning = "quantile",
    floor: float = 1e-4,
) -> PSIResult:
    """PSI of a current sample's distribution against a reference sample's, from raw values.

    Bins are set on the reference only: ``"quantile"`` (default) takes the ``b / n_bins``
    quantiles of the reference as inner edges (``inverted_cdf`` quantiles, which are reference
    values, so a discrete score's edges are its values; duplicates merged, so it may get fewer
    bins), ``"uniform"`` splits the reference's range into equal widths. The outer edges
    are ``-inf`` and ``+inf``, so current values outside the reference's range land in the end
    bins. Bin ``b`` is ``[e_b, e_{b+1})``. Then :func:`psi_from_counts`.

    Args:
        reference (ArrayLike): the reference values (e.g. pre-period scores).
        current (ArrayLike): the current values (e.g. one experiment day's scores).
        n_bins (int): the number of bins, at least 2.
        binning (Literal["quantile", "uniform"]): how the inner edges are placed.
        floor (float): the minimum share of a bin.

    Returns:
        PSIResult: the PSI, its status, the edges, shares and contributions.

    Raises:
        ValueError: if a sample is empty or not finite, or ``n_bins``, ``binning`` or
            ``floor`` is invalid.

    References:
        Siddiqi, N. (2006). Credit Risk Scorecards: Developing and Implementing Intelligent
        Credit Scoring. Wiley.

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> reference = rng.normal(0.0, 1.0, 20_000)
        >>> population_stability_index(reference, rng.normal(0.0, 1.0, 20_000)).status
        'stable'
        >>> shifted = population_stability_index(reference, rng.normal(0.6, 1.0, 20_000))
        >>> round(shifted.psi, 2), shifted.status
        (0.34, 'major')
    """
    if binning not in PSI_BINNINGS:
        options = ", ".join(repr(option) for option in PSI_BINNINGS)
        raise ValueError(f"binning must be one of {options}; got {binning!r}.")
    if not isinstance(n_bins, int | np.integer) or n_bins < 2:
        raise ValueError(f"n_bins must be an integer of at least 2; got {n_bins!r}.")
    ref = as_vector(reference, "reference")
    cur = as_vector(current, "current")
    for name, values in (("reference", ref), ("current", cur)):
        check_finite(values, name)
        if values.size == 0:
            raise ValueError(f"{name} is empty: PSI needs values in both samples.")
    if binning == "quantile":
        levels = np.linspace(0.0, 1.0, n_bins + 1)[1:-1]
        inner = np.unique(np.quantile(ref, levels, method="inverted_cdf"))
    else:
        inner = np.linspace(ref.min(), ref.max(), n_bins + 1)[1:-1]
        inner = np.unique(inner)
    # side="right": a value equal to an edge goes to the bin that starts there.
    n_edges = inner.size + 1
    reference_counts = np.bincount(np.searchsorted(inner, ref, side="right"), minlength=n_edges)
    current_counts = np.bincount(np.searchsorted(inner, cur, side="right"), minlength=n_edges)
    return psi_from_counts(
        reference_counts,
        current_counts,
        floor=floor,
        edges=(-math.inf, *inner.tolist(), math.inf),
    )
