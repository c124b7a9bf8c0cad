"""The code location: assets, checks, jobs and resources, assembled (nothing computed here)."""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg

from assets import ALL_ASSETS
from exp_dagster.automation import jobs
from exp_dagster.resources import default_resources


def build_definitions(
    resources: Mapping[str, dg.ConfigurableResource] | None = None,
) -> dg.Definitions:
    """The Definitions with the given resources (by default configured from the environment)."""
    return dg.Definitions(
        assets=ALL_ASSETS,
        jobs=jobs,
        resources=dict(resources or default_resources()),
    )


defs = build_definitions()
