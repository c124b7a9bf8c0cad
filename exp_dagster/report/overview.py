"""Every experiment at a glance: its window, where it stands, and its latest decision.

The ``experiments_overview`` asset shows these rows in the Dagster UI; they are built here from
the catalog's specs and the warehouse's latest decisions, without Dagster.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from exp_dagster.spec import ExperimentSpec

COLUMNS = ("experiment", "window", "status", "latest decision", "as of", "days decided")


@dataclass(frozen=True)
class OverviewRow:
    """One experiment in the overview.

    Attributes:
        experiment: the experiment id.
        window: ``start … end`` from the spec ("" when the spec is gone or invalid).
        status: ``scheduled``, ``running (day d of n)`` or ``ended`` by the calendar (UTC);
            ``invalid spec`` or ``spec removed`` when the catalog no longer describes it.
        decision: the latest decision, with the variant to ship ("not analysed yet" when none).
        as_of: the day of that decision (None when none).
        days_decided: how many days have a decision.
        first_reason: the first of that decision's reasons ("" when none).
    """

    experiment: str
    window: str
    status: str
    decision: str
    as_of: dt.date | None
    days_decided: int
    first_reason: str

    def cells(self) -> tuple[str, ...]:
        return (
            self.experiment,
            self.window,
            self.status,
            self.decision,
            self.as_of.isoformat() if self.as_of else "",
            str(self.days_decided),
        )


def _status(spec: ExperimentSpec, today: dt.date) -> str:
    if today < spec.start:
        return "scheduled"
    if today > spec.end:
        return "ended"
    return f"running (day {(today - spec.start).days + 1} of {(spec.end - spec.start).days + 1})"


def overview_rows(
    specs: Mapping[str, ExperimentSpec],
    latest: Sequence[Mapping[str, Any]],
    today: dt.date,
    invalid: Collection[str] = (),
) -> list[OverviewRow]:
    """One row per experiment in the catalog, with an invalid spec, or with decisions in the
    warehouse, sorted by id.

    Args:
        specs: the catalog's valid specs by id.
        latest: the warehouse's latest decision per experiment (``read_latest_decisions``).
        today: the calendar day the status is judged on (UTC).
        invalid: ids of spec files that do not validate.

    Examples:
        >>> import datetime as dt
        >>> from exp_dagster.spec import ExperimentSpec
        >>> spec = ExperimentSpec.model_validate({
        ...     "id": "ranker_v2", "start": "2026-10-01", "end": "2026-10-14",
        ...     "variants": [{"name": "control", "weight": 0.5, "control": True},
        ...                  {"name": "treatment", "weight": 0.5}],
        ...     "metrics": {"primary": "ctr"}})
        >>> latest = [{"experiment_id": "ranker_v2", "as_of_date": dt.date(2026, 10, 5),
        ...            "decision": "KEEP_RUNNING", "variant": None, "reasons": ["Too early."],
        ...            "days_decided": 5}]
        >>> overview_rows({"ranker_v2": spec}, latest, dt.date(2026, 10, 6))[0].cells()
        ('ranker_v2', '2026-10-01 … 2026-10-14', 'running (day 6 of 14)', 'KEEP_RUNNING', \
'2026-10-05', '5')
        >>> latest[0]["ramp_action"] = "hold"  # a ramp in progress says its next step
        >>> overview_rows({"ranker_v2": spec}, latest, dt.date(2026, 10, 6))[0].decision
        'KEEP_RUNNING (ramp: hold)'
    """
    decided = {row["experiment_id"]: row for row in latest}
    rows = []
    for experiment_id in sorted(set(specs) | set(invalid) | set(decided)):
        spec = specs.get(experiment_id)
        if spec is not None:
            window, status = f"{spec.start} … {spec.end}", _status(spec, today)
        else:
            window = ""
            status = "invalid spec" if experiment_id in invalid else "spec removed"
        found = decided.get(experiment_id)
        if found is None:
            rows.append(OverviewRow(experiment_id, window, status, "not analysed yet", None, 0, ""))
            continue
        verdict = found["decision"] + (f" {found['variant']}" if found["variant"] else "")
        if found.get("ramp_action"):  # a ramp in progress: its next step beside the verdict
            verdict += f" (ramp: {found['ramp_action'].replace('_', ' ')})"
        reasons = list(found["reasons"] or [])
        rows.append(
            OverviewRow(
                experiment_id,
                window,
                status,
                verdict,
                found["as_of_date"],
                int(found["days_decided"]),
                reasons[0] if reasons else "",
            )
        )
    return rows


def overview_markdown(rows: Sequence[OverviewRow]) -> str:
    """The rows as a Markdown table, each latest decision's first reason below it."""
    if not rows:
        return "_no experiment in the catalog or the warehouse yet_"
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += [
        "| " + " | ".join(cell.replace("|", "\\|") for cell in r.cells()) + " |" for r in rows
    ]
    reasons = [f"- **{r.experiment}**: {r.first_reason}" for r in rows if r.first_reason]
    return "\n".join(lines + (["", *reasons] if reasons else []))
