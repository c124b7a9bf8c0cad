"""The code location: assets, checks, jobs, sensors, schedules and resources, assembled (nothing
computed here)."""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg

from assets import ALL_ASSETS
from exp_dagster.automation import jobs
from exp_dagster.resources import default_resources
from exp_dagster.triggers import schedules, sensors, with_automation


def build_definitions(
    resources: Mapping[str, dg.ConfigurableResource] | None = None,
) -> dg.Definitions:
    """The Definitions with the given resources (by default configured from the environment)."""
    return dg.Definitions(
        assets=with_automation(ALL_ASSETS),
        jobs=jobs,
        sensors=sensors,
        schedules=schedules,
        # Steps of a run share one process: a step per subprocess would cost more than the step,
        # and the writers take turns on the DuckDB file anyway (docs/architecture.md, decision 7).
        executor=dg.in_process_executor,
        resources=dict(resources or default_resources()),
    )


defs = build_definitions()
