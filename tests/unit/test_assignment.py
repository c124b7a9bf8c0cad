"""The deterministic assignment: Python and the warehouse's SQL agree bit for bit."""

from __future__ import annotations

import collections

import duckdb

from exp_dagster.assignment import BUCKETS, assign_variant, bucket_upper_bounds, hash_bucket


def test_sql_and_python_buckets_agree() -> None:
    units = [f"u{i}" for i in range(2000)] + ["", "ünïcødé", "42", "a.b"]
    conn = duckdb.connect()
    rows = conn.execute(
        "SELECT u, (('0x' || substr(md5($salt || '.' || u), 1, 15))::UBIGINT % 10000)::INTEGER "
        "FROM unnest($units) AS t(u)",
        {"salt": "exp-salt", "units": units},
    ).fetchall()
    assert {u: b for u, b in rows} == {u: hash_bucket("exp-salt", u) for u in units}


def test_weights_are_respected_and_assignment_is_stable() -> None:
    weights = {"control": 0.5, "a": 0.3, "b": 0.2}
    counts = collections.Counter(assign_variant("s", f"user-{i}", weights) for i in range(40_000))
    for name, weight in weights.items():
        assert abs(counts[name] / 40_000 - weight) < 0.01
    assert assign_variant("s", "user-1", weights) == assign_variant("s", "user-1", weights)
    assert bucket_upper_bounds([1 / 3, 1 / 3, 1 / 3])[-1] == BUCKETS


def test_salt_reshuffles_units() -> None:
    weights = {"control": 0.5, "treatment": 0.5}
    same = sum(
        assign_variant("salt-1", f"u{i}", weights) == assign_variant("salt-2", f"u{i}", weights)
        for i in range(4000)
    )
    assert 0.45 < same / 4000 < 0.55
