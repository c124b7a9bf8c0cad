"""Cross-moments of the per-unit quantities of the spec's ``oec`` and ``metric_tree`` metrics
(``metric_cross_statistics``), for the OEC's joint covariance and the metric tree's factors
(docs/statistics.md, "OEC and metric trees").

Summed in the engine from ``unit_metric_rows``' list columns, exact sums as
``metric_statistics`` (docs/architecture.md, decision 1), only for an experiment that declares an
``oec`` or a ``metric_tree``: for the others the step deletes nothing and sums nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import duckdb

from exp_dagster.spec import ResolvedExperiment
from exp_dagster.warehouse.statements import (
    execute,
    fetch_dicts,
    fill_markers,
    scalar,
    sql_statements,
)


def _cross_terms(
    components: Sequence[tuple[str, str]], names: Sequence[str], metric_order: Sequence[str]
) -> tuple[dict[str, str], dict[str, Any]]:
    """The @...@ markers of metric_cross_statistics.sql and their parameters."""
    values, params = [], {}
    for k, (metric, quantity) in enumerate(components, start=1):
        column = "x" if quantity == "denominator" else "y"
        values.append(f"{column}[$index_{k}] AS v_{k}")
        params[f"index_{k}"] = metric_order.index(metric) + 1
    pairs = [(k, m) for k in range(1, len(components) + 1) for m in range(k, len(components) + 1)]
    sums = [f"exact_sum(v_{k}) AS s_{k}" for k in range(1, len(components) + 1)]
    sums += [f"exact_sum(v_{k} * v_{m}) AS p_{k}_{m}" for k, m in pairs]
    params["component_a"] = [names[k - 1] for k, _ in pairs]
    params["component_b"] = [names[m - 1] for _, m in pairs]
    terms = {
        "component_values": ", ".join(values),
        "sums": ", ".join(sums),
        "sum_a": ", ".join(f"s_{k}" for k, _ in pairs),
        "sum_b": ", ".join(f"s_{m}" for _, m in pairs),
        "sum_ab": ", ".join(f"p_{k}_{m}" for k, m in pairs),
    }
    return terms, params


def build_cross_statistics(
    conn: duckdb.DuckDBPyConnection, experiment: ResolvedExperiment, day: dt.date
) -> int:
    """Replace the partition's ``metric_cross_statistics`` rows; returns the rows written.

    For an experiment without ``oec`` or ``metric_tree`` only the (empty) partition is cleared:
    no unit row is read. Run inside the
    metric_statistics step's transaction, after ``unit_metrics`` wrote the day's units.
    """
    spec = experiment.spec
    clear, insert = sql_statements("metric_cross_statistics")
    params: dict[str, Any] = {"experiment_id": spec.id, "day": day}
    # The delete always runs (a small table, by partition), so a spec that dropped its oec leaves
    # no stale rows behind.
    execute(conn, clear, params)
    components = experiment.cross_components
    if not components:
        return 0
    order = scalar(
        conn,
        "SELECT metrics FROM unit_metric_names WHERE experiment_id = ? AND as_of_date = ?",
        [spec.id, day],
    )
    if order is None:
        return 0  # no unit exposed yet
    terms, cross_params = _cross_terms(components, experiment.cross_component_names, list(order))
    execute(
        conn,
        fill_markers(insert, terms),
        {**params, **cross_params, "spec_version": experiment.version},
    )
    return int(
        scalar(
            conn,
            "SELECT count(*) FROM metric_cross_statistics "
            "WHERE experiment_id = ? AND as_of_date = ?",
            [spec.id, day],
        )
    )


def cross_moments_by_variant(
    rows: Iterable[Mapping[str, Any]], names: Sequence[str]
) -> dict[str, tuple[int, list[float], list[list[float]]]]:
    """Each variant's ``(n, sums, products)`` over the components ``names``, in that order, from
    its ``metric_cross_statistics`` rows (which hold each pair once)."""
    index = {name: k for k, name in enumerate(names)}
    arms: dict[str, tuple[int, list[float], list[list[float]]]] = {}
    for row in rows:
        a, b = row["component_a"], row["component_b"]
        if a not in index or b not in index:
            continue
        _, sums, products = arms.setdefault(
            row["variant"],
            (int(row["n"]), [0.0] * len(names), [[0.0] * len(names) for _ in names]),
        )
        i, j = index[a], index[b]
        sums[i], sums[j] = float(row["sum_a"]), float(row["sum_b"])
        products[i][j] = products[j][i] = float(row["sum_ab"])
    return arms


def read_cross_history(
    conn: duckdb.DuckDBPyConnection, experiment: ResolvedExperiment, day: dt.date
) -> dict[dt.date, list[dict[str, Any]]]:
    """The ``metric_cross_statistics`` rows of the days before ``day`` under the experiment's
    current spec version, by date: the earlier looks of the OEC's sequential test (a few rows
    per variant and day; nothing is read without an ``oec``)."""
    if experiment.spec.oec is None:
        return {}
    history: dict[dt.date, list[dict[str, Any]]] = {}
    for row in fetch_dicts(
        conn,
        "SELECT * FROM metric_cross_statistics WHERE experiment_id = ? AND as_of_date < ? "
        "AND spec_version = ? ORDER BY ALL",
        [experiment.spec.id, day, experiment.version],
    ):
        history.setdefault(row["as_of_date"], []).append(row)
    return history
