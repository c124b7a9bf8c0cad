"""Tables of results for people: in the terminal (``make demo``, ``analyze``) and in the UI."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from exp_dagster.decision import Decision, p_text, pct

Row = Mapping[str, Any]

ROLE_ORDER = {"primary": 0, "oec": 1, "secondary": 2, "guardrail": 3}


def columns(level: str = "95%") -> tuple[str, ...]:
    """Column titles; ``level`` is the confidence level of the intervals, e.g. ``95%``."""
    return (
        "metric",
        "role",
        "variant",
        "n (c/t)",
        "control",
        "treatment",
        f"abs effect [{level} CI]",
        f"rel lift [{level} CI]",
        "p-value",
        "CUPED var. red.",
    )


def _level(results: Sequence[Row]) -> str:
    alphas = {float(r["alpha"]) for r in results}
    return f"{1 - alphas.pop():.0%}" if len(alphas) == 1 else "1 − alpha"


def _number(value: float | None) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.1f}"
    if magnitude >= 1:
        return f"{value:.3f}"
    return f"{value:.4g}"


def _interval(show: Callable[[float | None], str], row: Row, kind: str) -> str:
    effect = row[f"{kind}_effect"]
    return f"{show(effect)} [{show(row[f'{kind}_ci_low'])}, {show(row[f'{kind}_ci_high'])}]"


def _cells(row: Row) -> list[str]:
    reduction = (
        pct(row["variance_reduction"], signed=False)
        if row["variance_reduction"] is not None
        else "–"
    )
    if row.get("not_estimable"):
        blank = ["–"] * 4
        return [
            str(row["metric"]),
            str(row["role"]),
            f"{row['variant']} vs {row['control']}",
            f"{row['n_control']:,}/{row['n_treatment']:,}",
            "not estimable",
            *blank,
            "–",
        ]
    return [
        str(row["metric"]),
        str(row["role"]),
        f"{row['variant']} vs {row['control']}",
        f"{row['n_control']:,}/{row['n_treatment']:,}",
        _number(row["mean_control"]),
        _number(row["mean_treatment"]),
        _interval(_number, row, "abs"),
        _interval(pct, row, "rel"),
        p_text(row["p_value"]).removeprefix("p = ").removeprefix("p "),
        reduction,
    ]


def overall_rows(results: Sequence[Row]) -> list[Row]:
    rows = [r for r in results if r["segment"] == "all"]
    return sorted(rows, key=lambda r: (ROLE_ORDER.get(r["role"], 9), r["metric"], r["variant"]))


def not_estimable_notes(results: Sequence[Row]) -> list[str]:
    """One line per overall row without an effect: ``metric (variant): not estimable: why``."""
    return [
        f"{r['metric']} ({r['variant']}): {r['not_estimable']}"
        for r in overall_rows(results)
        if r.get("not_estimable")
    ]


def results_text(results: Sequence[Row]) -> str:
    """A fixed-width table of the overall results, primary metric first; below it, why each
    metric without an effect has none."""
    titles = columns(_level(results))
    table = [list(titles)] + [_cells(r) for r in overall_rows(results)]
    widths = [max(len(row[i]) for row in table) for i in range(len(titles))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in table
    ]
    lines.insert(1, "  ".join("─" * width for width in widths))
    notes = not_estimable_notes(results)
    if notes:
        lines += ["", *notes]
    return "\n".join(lines)


def results_markdown(results: Sequence[Row]) -> str:
    """The same table in Markdown, for asset metadata in the Dagster UI."""
    titles = columns(_level(results))
    lines = ["| " + " | ".join(titles) + " |", "|" + "---|" * len(titles)]
    lines += ["| " + " | ".join(_cells(r)) + " |" for r in overall_rows(results)]
    notes = not_estimable_notes(results)
    if notes:
        lines += ["", *(f"- {note}" for note in notes)]
    return "\n".join(lines)


def decision_markdown(decision: Decision, experiment_id: str, as_of: str) -> str:
    verdict = decision.decision.value + (f" {decision.variant}" if decision.variant else "")
    lines = [f"## {experiment_id} as of {as_of}: **{verdict}**", ""]
    lines += [f"- {reason}" for reason in decision.reasons]
    return "\n".join(lines)
