"""Deterministic hash assignment of units to variants.

The same function is implemented in SQL (``warehouse/sql``) so the warehouse can recompute every
unit's variant and flag exposures that disagree. Both must stay bit-for-bit identical:

    bucket  = int(md5(f"{salt}.{unit_id}").hexdigest()[:15], 16) % BUCKETS
    variant = the first variant whose cumulative weight * BUCKETS exceeds ``bucket``

Fifteen hex digits (60 bits) fit a signed 64-bit integer, so every SQL engine can do the same.

Ramped rollouts (the spec's ``ramp``): a unit keeps its bucket, and each phase maps buckets to
variants by its own weights, in the variants' order. A unit's variant is the one of the phase in
force on its first exposure day. With the control listed first and the treatment's weight
growing, the treatment's range of buckets grows downwards from ``BUCKETS``, so a unit can only
move from control to treatment between phases, never back. An exposure on day D is accepted
when its variant is the unit's under the phase in force on D or under an earlier phase (a unit
first exposed then keeps its variant: sticky assignment); a unit logged under two variants, as
when the serving system moves it to its new phase's variant, is a crossover and left out of the
analysis. With more than two variants the ranges of the middle variants shift as weights change,
so units may move between treatments too: those are crossovers as well.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

BUCKETS = 10_000


def hash_bucket(salt: str, unit_id: str) -> int:
    """Return the unit's bucket in ``[0, BUCKETS)`` for an experiment salt.

    Examples:
        >>> hash_bucket("ranker-v2", "u1")
        1106
    """
    digest = hashlib.md5(f"{salt}.{unit_id}".encode()).hexdigest()
    return int(digest[:15], 16) % BUCKETS


def bucket_upper_bounds(weights: Sequence[float]) -> list[int]:
    """Cumulative bucket bounds for weights that sum to 1 (the last bound is always BUCKETS).

    Examples:
        >>> bucket_upper_bounds([0.5, 0.25, 0.25])
        [5000, 7500, 10000]
    """
    bounds: list[int] = []
    cumulative = 0.0
    for weight in weights:
        cumulative += weight
        bounds.append(round(cumulative * BUCKETS))
    bounds[-1] = BUCKETS
    return bounds


def assign_variant(salt: str, unit_id: str, weights: Mapping[str, float]) -> str:
    """Variant of ``unit_id`` under ``salt``; ``weights`` maps variant names to weights, in order.

    Examples:
        >>> assign_variant("ranker-v2", "u1", {"control": 0.5, "treatment": 0.5})
        'control'
    """
    bucket = hash_bucket(salt, unit_id)
    names = list(weights)
    for name, bound in zip(names, bucket_upper_bounds(list(weights.values())), strict=True):
        if bucket < bound:
            return name
    return names[-1]


def ramp_variants(salt: str, unit_id: str, phases: Sequence[Mapping[str, float]]) -> list[str]:
    """The variant of ``unit_id`` under each ramp phase's weights (variant name → weight, in
    the variants' order), in the phases' order: the variants an exposure in the last phase may
    carry (the last one, or an earlier one for a unit first exposed in that phase).

    Examples:
        >>> ramp_variants(
        ...     "ranker-v2",
        ...     "u7",
        ...     [{"control": 0.99, "treatment": 0.01}, {"control": 0.5, "treatment": 0.5}],
        ... )
        ['control', 'treatment']
    """
    return [assign_variant(salt, unit_id, weights) for weights in phases]
