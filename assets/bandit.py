"""bandit_allocations: a bandit experiment's traffic split for the next day.

Optional in effect: for an experiment without a ``bandit`` block it writes nothing (it still
replaces its partition, so removing the block clears a stale split) and says so in its metadata.
"""

# No `from __future__ import annotations` here: Dagster checks the `context` annotation as an
# object, and a postponed (string) annotation fails its check.

import dagster as dg
from dagster import AssetExecutionContext

from assets._common import gate_spec, run_gate, timed, writer_asset
from exp_dagster.partitions import experiment_days, parse_experiment_day
from exp_dagster.resources import Catalog, Warehouse
from exp_dagster.warehouse.partitions import read_partition, replace_partition

_GATE = "check_bandit_allocations_schema"


@writer_asset(
    partitions_def=experiment_days,
    deps=["metric_statistics"],
    kinds=("duckdb", "python"),
    check_specs=[
        gate_spec(
            _GATE,
            "bandit_allocations",
            "Bandit allocation: one row per variant, weights in [floor, 1] summing to 1 "
            "(within 1e-9), probabilities in [0, 1].",
        )
    ],
)
def bandit_allocations(
    context: AssetExecutionContext, warehouse: Warehouse, catalog: Catalog
) -> dg.MaterializeResult:
    """For an experiment with a ``bandit`` block: the next day's traffic weight of each variant
    by Thompson or top-two Thompson sampling on the day's statistics of the reward metric, with
    each variant's posterior probability of being the best (conventions:
    :mod:`exp_dagster.stats.bandit`). Other experiments: no rows."""
    # Here, not at the top: the bandit library loads scipy, which the code location must not
    # import when it loads (tests/integration/test_code_location_import.py).
    import pandas as pd

    from exp_dagster.allocation import next_day_allocation
    from exp_dagster.schemas import BANDIT_ALLOCATIONS_SCHEMA

    experiment_id, day = parse_experiment_day(context)
    experiment = catalog.experiment(experiment_id)
    metadata: dict[str, object] = {"spec_version": experiment.version}
    with warehouse.connect() as conn, timed(metadata):
        statistics = (
            read_partition(conn, "metric_statistics", experiment_id, day)
            if experiment.spec.bandit is not None
            else []
        )
        outcome = next_day_allocation(experiment, day, statistics)
        replace_partition(conn, "bandit_allocations", experiment_id, day, list(outcome.rows))
    metadata["allocation"] = outcome.note
    if outcome.rows:
        metadata["weights"] = dg.MetadataValue.md(
            "| variant | weight | P(best) | n | mean |\n| --- | ---: | ---: | ---: | ---: |\n"
            + "\n".join(
                f"| {r['variant']} | {r['weight']:.4f} | "
                f"{'' if r['probability_best'] is None else format(r['probability_best'], '.4f')}"
                f" | {r['n']:,} | {'' if r['mean'] is None else format(r['mean'], '.4g')} |"
                for r in outcome.rows
            )
        )
        gate = run_gate(
            _GATE,
            "bandit_allocations",
            pd.DataFrame(list(outcome.rows)),
            BANDIT_ALLOCATIONS_SCHEMA,
            len(outcome.rows),
        )
    else:
        gate = dg.AssetCheckResult(
            check_name=_GATE,
            asset_key="bandit_allocations",
            passed=True,
            description=f"no rows: {outcome.note}",
        )
    return dg.MaterializeResult(
        metadata={**metadata, "dagster/row_count": len(outcome.rows)}, check_results=[gate]
    )
