"""The panel of a spec's ``did`` block (``did_cluster_days``): per metric, cluster and day, the
units exposed that day and the exact sums of their daily values (docs/statistics.md,
"Difference in differences").

Summed in the engine (docs/architecture.md, decision 1), only for an experiment that declares a
``did`` block, from the day's ``exposures`` and ``event_facts`` alone: a day's partition holds
that day's cells, so a new day costs one day's rows whatever the panel's length. The analysis
reads every day's cells from the start (:func:`read_did_panel`).

Units whose exposure row has no value of the cluster segment belong to no cluster; nothing is
lost: they are counted in one cell per metric and day with ``cluster`` and ``treated`` NULL
(:func:`units_without_cluster`), which the panel leaves out and ``did_effects`` notes.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb

from exp_dagster.spec import ResolvedExperiment
from exp_dagster.warehouse.statements import execute, fetch_dicts, scalar, sql_statements
from exp_dagster.warehouse.unit_state import checked_unit_terms


def build_did_cluster_days(
    conn: duckdb.DuckDBPyConnection, experiment: ResolvedExperiment, day: dt.date
) -> int:
    """Replace the partition's ``did_cluster_days`` rows; returns the rows written.

    For an experiment without ``did`` only the (empty) partition is cleared. Run inside the
    metric_statistics step's transaction.
    """
    spec = experiment.spec
    clear, insert = sql_statements("did_cluster_days")
    params: dict[str, Any] = {"experiment_id": spec.id, "day": day}
    # The delete always runs, so a spec that dropped its did block leaves no stale rows behind.
    execute(conn, clear, params)
    if spec.did is None:
        return 0
    names = sorted(spec.did.metrics)
    terms = [checked_unit_terms(experiment.metrics[name]) for name in names]
    execute(
        conn,
        insert,
        {
            **params,
            "cluster": spec.did.cluster,
            "treated": list(spec.did.treated),
            "metric_names": names,
            "reductions": [t.reduction for t in terms],
            "events": [t.event for t in terms],
            "spec_version": experiment.version,
        },
    )
    return int(
        scalar(
            conn,
            "SELECT count(*) FROM did_cluster_days WHERE experiment_id = ? AND as_of_date = ?",
            [spec.id, day],
        )
    )


def units_without_cluster(
    conn: duckdb.DuckDBPyConnection, experiment: ResolvedExperiment, day: dt.date
) -> int:
    """The units exposed on ``day`` whose exposure row has no value of the did cluster segment
    (left out of the panel); 0 without a ``did`` block."""
    spec = experiment.spec
    if spec.did is None:
        return 0
    # Every metric's cell counts the same units.
    return int(
        scalar(
            conn,
            "SELECT coalesce(max(n), 0) FROM did_cluster_days WHERE experiment_id = ? "
            "AND as_of_date = ? AND cluster IS NULL",
            [spec.id, day],
        )
    )


def read_did_panel(
    conn: duckdb.DuckDBPyConnection, experiment: ResolvedExperiment, day: dt.date
) -> list[dict[str, Any]]:
    """Every cell of the panel from the start through ``day`` (or the end date) under the
    current spec version, ordered by metric, day and cluster (the cell of the units without a
    cluster, ``cluster`` NULL, last); empty without a ``did`` block."""
    spec = experiment.spec
    if spec.did is None:
        return []
    return fetch_dicts(
        conn,
        "SELECT metric, as_of_date, cluster, treated, n, sum_y, sum_y2 FROM did_cluster_days "
        "WHERE experiment_id = ? AND as_of_date BETWEEN ? AND ? AND spec_version = ? "
        "ORDER BY metric, as_of_date, cluster NULLS LAST",
        [spec.id, spec.start, min(day, spec.end), experiment.version],
    )
