"""Deterministic hash assignment of units to variants.

The same function is implemented in SQL (``warehouse/sql``) so the warehouse can recompute every
unit's variant and flag exposures that disagree. Both must stay bit-for-bit identical:

    bucket  = int(md5(f"{salt}.{unit_id}").hexdigest()[:15], 16) % BUCKETS
    variant = the first variant whose cumulative weight * BUCKETS exceeds ``bucket``

Fifteen hex digits (60 bits) fit a signed 64-bit integer, so every SQL engine can do the same.
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
