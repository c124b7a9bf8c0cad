"""docs/spec.md is generated from the spec models: it must list every field, with a meaning."""

from __future__ import annotations

from exp_dagster.home import PROJECT_ROOT
from exp_dagster.spec import AnalysisPolicy, ExperimentSpec, MetricSpec
from exp_dagster.spec_reference import attribute_descriptions, missing_descriptions, render


def test_every_spec_field_has_a_description() -> None:
    assert missing_descriptions() == [], (
        "add these fields to their model's 'Attributes:' docstring section"
    )


def test_docs_spec_md_is_current() -> None:
    page = (PROJECT_ROOT / "docs" / "spec.md").read_text()
    assert page == render(), (
        "docs/spec.md is stale: run `.venv/bin/python -m exp_dagster.spec_reference > docs/spec.md`"
    )


def test_the_page_names_every_field_with_its_default() -> None:
    page = render()
    for model in (ExperimentSpec, AnalysisPolicy, MetricSpec):
        for name in model.model_fields:
            assert f"| `{name}` |" in page, name
    assert "| `pre_period_days` | integer (≥ 0, ≤ 90) | `7` |" in page
    assert "| `start` | date (YYYY-MM-DD) | **required** |" in page
    assert "| `sequential` | `group_sequential` \\| `always_valid` \\| `fixed_horizon` |" in page


def test_shared_descriptions_and_continuations_are_parsed() -> None:
    described = attribute_descriptions(ExperimentSpec)
    assert described["start"] == described["end"]
    assert described["hash_salt"].endswith(
        "Leave it out when the logs come from another assignment system."
    )
