"""Pandera schemas of the tables that cross a layer; the assets run them as blocking gates.

A schema describes one partition as read back from the warehouse. Where a rule depends on the
experiment (its variants, its metrics), a function builds the schema for that experiment.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pandera.pandas as pa


def _finite(series: pd.Series) -> pd.Series:
    return pd.Series(np.isfinite(series.astype(float)), index=series.index)


def exposures_schema(variants: Sequence[str]) -> pa.DataFrameSchema:
    """Validated first exposures of one experiment and day."""
    return pa.DataFrameSchema(
        {
            "unit_id": pa.Column(str, pa.Check.str_length(min_value=1), nullable=False),
            "variant": pa.Column(str, pa.Check.isin(list(variants)), nullable=False),
            "first_exposed_at": pa.Column("datetime64[us]", nullable=False),
            "exposure_date": pa.Column("datetime64[us]", nullable=False),
            "exposure_rows": pa.Column(int, pa.Check.ge(1), nullable=False),
        },
        checks=[
            pa.Check(
                lambda df: df["first_exposed_at"].dt.normalize() == df["exposure_date"],
                name="first_exposed_at_on_exposure_date",
                error="first_exposed_at must fall on exposure_date (UTC)",
            )
        ],
        unique=["unit_id"],
        name="exposures",
        strict=False,
    )


EVENT_FACTS_SCHEMA = pa.DataFrameSchema(
    {
        "unit_id": pa.Column(str, pa.Check.str_length(min_value=1), nullable=False),
        "event": pa.Column(str, pa.Check.str_length(min_value=1), nullable=False),
        "n": pa.Column(int, pa.Check.ge(1), nullable=False),
        "total": pa.Column(float, pa.Check(_finite, name="finite"), nullable=False),
        "total_sq": pa.Column(float, [pa.Check.ge(0), pa.Check(_finite, name="finite")]),
    },
    unique=["unit_id", "event"],
    name="event_facts",
    strict=False,
)


def unit_metrics_schema(
    variants: Sequence[str],
    metrics: Sequence[str],
    proportions: Sequence[str],
    windowed: Sequence[str] = (),
) -> pa.DataFrameSchema:
    """Per-unit metric values of one experiment and day.

    A ``windowed`` metric's value (and ratio denominator) is NULL for a unit whose window has
    not elapsed yet; every other value must be present.
    """
    checks = [
        pa.Check(
            lambda df: (
                ~df["metric"].isin(list(proportions))
                | df["y"].isin([0.0, 1.0])
                | (df["y"].isna() & df["metric"].isin(list(windowed)))
            ),
            name="proportion_is_zero_or_one",
            error="a proportion metric's unit value must be 0 or 1",
        )
    ]
    if windowed:
        checks.append(
            pa.Check(
                lambda df: df["metric"].isin(list(windowed)) | (df["y"].notna() & df["x"].notna()),
                name="missing_only_in_a_window",
                error="only a windowed metric's value may be missing (its window has not elapsed)",
            )
        )
    return pa.DataFrameSchema(
        {
            "unit_id": pa.Column(str, nullable=False),
            "variant": pa.Column(str, pa.Check.isin(list(variants)), nullable=False),
            "metric": pa.Column(str, pa.Check.isin(list(metrics)), nullable=False),
            "y": pa.Column(float, pa.Check(_finite, name="finite"), nullable=bool(windowed)),
            "x": pa.Column(
                float,
                [pa.Check.ge(0), pa.Check(_finite, name="finite")],
                nullable=bool(windowed),
            ),
        },
        checks=checks,
        unique=["unit_id", "metric"],
        name="unit_metrics",
        strict=False,
    )


RESULTS_SCHEMA = pa.DataFrameSchema(
    {
        "metric": pa.Column(str, nullable=False),
        "variant": pa.Column(str, nullable=False),
        "n_control": pa.Column(int, pa.Check.ge(2)),
        "n_treatment": pa.Column(int, pa.Check.ge(2)),
        "p_value": pa.Column(float, pa.Check.in_range(0.0, 1.0), nullable=False),
        "abs_effect": pa.Column(float, pa.Check(_finite, name="finite"), nullable=False),
        "variance_reduction": pa.Column(float, pa.Check.le(1.0), nullable=True),
        "df": pa.Column(float, pa.Check.gt(0.0), nullable=True),
        "sd_control": pa.Column(float, pa.Check.ge(0.0), nullable=True),
        "sd_treatment": pa.Column(float, pa.Check.ge(0.0), nullable=True),
        # Every row with an effect is judged once (exp_dagster/significance.py).
        "significant": pa.Column(bool, nullable=False),
        "significance_test": pa.Column(
            str,
            pa.Check.isin(["group_sequential", "always_valid", "fixed_horizon"]),
            nullable=False,
        ),
    },
    checks=[
        pa.Check(
            lambda df: (
                (df["abs_ci_low"] <= df["abs_effect"]) & (df["abs_effect"] <= df["abs_ci_high"])
            ),
            name="effect_inside_its_ci",
            error="the absolute effect must lie inside its confidence interval",
        )
    ],
    unique=["metric", "variant", "segment", "segment_value"],
    name="results",
    strict=False,
    coerce=True,
)


BANDIT_ALLOCATIONS_SCHEMA = pa.DataFrameSchema(
    {
        "variant": pa.Column(str, nullable=False),
        "weight": pa.Column(float, pa.Check.in_range(0.0, 1.0), nullable=False),
        "floor": pa.Column(float, pa.Check.ge(0.0), nullable=False),
        "probability_best": pa.Column(float, pa.Check.in_range(0.0, 1.0), nullable=True),
        "n": pa.Column(int, pa.Check.ge(0), nullable=False),
    },
    checks=[
        pa.Check(
            lambda df: df["weight"] >= df["floor"],
            name="weight_at_least_the_floor",
            error="every variant's weight must be at least the spec's bandit floor",
        ),
        pa.Check(
            lambda df: abs(float(df["weight"].sum()) - 1.0) <= 1e-9,
            name="weights_sum_to_one",
            error="the weights of one day's allocation must sum to 1 (within 1e-9)",
        ),
    ],
    unique=["variant"],
    name="bandit_allocations",
    strict=False,
    coerce=True,
)


def model_logs_schema(kind: str, variants: Sequence[str]) -> pa.DataFrameSchema:
    """Typed rows of one day of ``ranking``, ``predictions`` or ``interleaving`` logs
    (docs/input.md); a value that did not parse is NULL here and fails its column's check."""
    names = list(variants)
    text = pa.Column(str, pa.Check.str_length(min_value=1), nullable=False)
    finite = pa.Check(_finite, name="finite")
    position = pa.Column(None, [pa.Check.ge(1), finite], nullable=False)
    columns: dict[str, pa.Column] = {
        "ranking": {
            "request_id": text,
            "unit_id": text,
            "variant": pa.Column(str, pa.Check.isin(names), nullable=False),
            "item_id": text,
            "position": position,
            "score": pa.Column(None, finite, nullable=False),
            "label": pa.Column(None, [pa.Check.ge(0), finite], nullable=False),
            "propensity": pa.Column(
                None, [pa.Check.gt(0), pa.Check.le(1)], nullable=True, required=False
            ),
        },
        "predictions": {
            "unit_id": text,
            "model": pa.Column(str, pa.Check.isin(names), nullable=False),
            "score": pa.Column(None, pa.Check.in_range(0.0, 1.0), nullable=False),
            "label": pa.Column(None, pa.Check.isin([0.0, 1.0]), nullable=False),
        },
        "interleaving": {
            "request_id": text,
            "unit_id": text,
            "item_id": text,
            "position": position,
            "team": pa.Column(str, pa.Check.isin(names), nullable=False),
            "click": pa.Column(None, [pa.Check.ge(0), finite], nullable=False),
        },
    }[kind]
    return pa.DataFrameSchema(columns, name=f"{kind} logs", strict=False)
