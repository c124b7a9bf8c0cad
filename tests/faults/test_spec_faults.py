"""One test per spec fault: ``exp-dagster analyze`` rejects the spec naming the file and the field,
with exit status 2 and one message, before anything runs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from exp_dagster.cli import main
from exp_dagster.home import PROJECT_ROOT
from exp_dagster.spec import SpecError, load_experiments, load_metric_catalog
from tests.faults.corpus import END, EXPERIMENT_ID, START, metric_catalog, spec_data, write_catalog

Mutate = Callable[[dict[str, Any]], None]


def _set(**values: Any) -> Mutate:
    return lambda spec: spec.update(values)


def _variants(*variants: dict[str, Any]) -> Mutate:
    return _set(variants=list(variants))


def _guardrail(**guardrail: Any) -> Mutate:
    return lambda spec: spec["metrics"].update(guardrails=[guardrail])


# (name, change to the spec, the field the message must name, a phrase of the message)
SPEC_FAULTS: list[tuple[str, Mutate, str, str]] = [
    (
        "weights-not-summing-to-1",
        _variants({"name": "a", "weight": 0.6, "control": True}, {"name": "b", "weight": 0.6}),
        "variants",
        "sum to 1.2",
    ),
    (
        "metric-not-in-catalog",
        lambda s: s["metrics"].update(secondary=["watch_time_v3"]),
        "metrics",
        "watch_time_v3",
    ),
    (
        "guardrail-without-margin",
        _guardrail(metric="latency_p95"),
        "metrics.guardrails.0.margin",
        "Field required",
    ),
    ("inverted-window", _set(start=END.isoformat(), end=START.isoformat()), "end", "before"),
    (
        "no-control",
        _variants({"name": "a", "weight": 0.5}, {"name": "b", "weight": 0.5}),
        "variants",
        "control: true",
    ),
    (
        "two-controls",
        _variants(
            {"name": "a", "weight": 0.5, "control": True},
            {"name": "b", "weight": 0.5, "control": True},
        ),
        "variants",
        "exactly one",
    ),
    (
        "duplicate-variant-names",
        _variants({"name": "a", "weight": 0.5, "control": True}, {"name": "a", "weight": 0.5}),
        "variants",
        "unique",
    ),
    (
        "zero-weight",
        _variants({"name": "a", "weight": 1.0, "control": True}, {"name": "b", "weight": 0}),
        "variants.1.weight",
        "greater than 0",
    ),
    ("misspelt-field", _set(primry="ctr"), "primry", "Extra inputs"),
    (
        "negative-margin",
        _guardrail(metric="latency_p95", margin=-0.1),
        "metrics.guardrails.0.margin",
        "greater than or equal to 0",
    ),
    (
        "quantile-guardrail-absolute-margin",
        _guardrail(metric="latency_p95", margin=5, margin_type="absolute"),
        "metrics.guardrails",
        "relative margin",
    ),
    ("alpha-out-of-range", _set(alpha=0.7), "alpha", "less than 0.5"),
    ("pre-period-too-long", _set(pre_period_days=400), "pre_period_days", "less than or equal"),
    (
        "unknown-sequential-method",
        _set(analysis={"sequential": "peek_daily"}),
        "analysis.sequential",
        "group_sequential",
    ),
    (
        "segment-column-with-sql",
        _set(segments=['platform"; DROP TABLE exposures; --']),
        "segments.0",
        "pattern",
    ),
    ("id-with-path-traversal", _set(id="../../etc/passwd"), "id", "pattern"),
    ("id-not-the-file-name", _set(id="another_test"), "id", "name the file"),
    ("start-not-a-date", _set(start="next monday"), "start", "date"),
    (
        "guardrail-equal-to-primary",
        _guardrail(metric="watch_time", margin=0.05),
        "metrics",
        "both the primary metric and a guardrail",
    ),
    (
        "secondary-equal-to-primary",
        lambda s: s["metrics"].update(secondary=["watch_time", "ctr"]),
        "metrics",
        "both the primary metric and a secondary one",
    ),
    (
        "guardrail-listed-twice",
        lambda s: s["metrics"].update(
            guardrails=[
                {"metric": "latency_p95", "margin": 0.05},
                {"metric": "latency_p95", "margin": 0.5},
            ]
        ),
        "metrics",
        "latency_p95 listed more than once in 'guardrails'",
    ),
    (
        "secondary-and-guardrail",
        lambda s: s["metrics"].update(secondary=["ctr", "latency_p95"]),
        "metrics",
        "latency_p95 is both a secondary metric and a guardrail",
    ),
]


def _analyze(spec: Path, tmp_path: Path) -> int:
    return main(
        [
            "analyze",
            "--experiment",
            str(spec),
            "--exposures",
            str(tmp_path / "exposures"),
            "--events",
            str(tmp_path / "events"),
        ]
    )


@pytest.mark.parametrize(
    ("mutate", "field", "phrase"),
    [case[1:] for case in SPEC_FAULTS],
    ids=[f"rejected:{case[0]}" for case in SPEC_FAULTS],
)
def test_spec_fault(
    mutate: Mutate,
    field: str,
    phrase: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = spec_data()
    mutate(data)
    spec = write_catalog(tmp_path / "catalog")
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    assert _analyze(spec, tmp_path) == 2
    message = capsys.readouterr().err
    assert f"{EXPERIMENT_ID}.yaml" in message
    assert f"field '{field}" in message or f"'{field}'" in message, message
    assert phrase in message, message
    assert "Traceback" not in message


@pytest.mark.parametrize(
    ("content", "phrase"),
    [(b"id: [unclosed\n", "not valid YAML"), ("id: caf\xe9\n".encode("latin-1"), "not UTF-8")],
    ids=["rejected:invalid-yaml", "rejected:not-utf8"],
)
def test_unreadable_spec_file(
    content: bytes, phrase: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_catalog(tmp_path / "catalog")
    spec.write_bytes(content)
    assert _analyze(spec, tmp_path) == 2
    message = capsys.readouterr().err
    assert f"{EXPERIMENT_ID}.yaml" in message and phrase in message
    assert "Traceback" not in message


@pytest.mark.parametrize(
    ("original", "doubled", "key"),
    [
        ("hash_salt: fault-test-2026\n", "hash_salt: fault-test-2026\nhash_salt: x\n", "hash_salt"),
        ("  primary: watch_time\n", "  primary: watch_time\n  primary: ctr\n", "primary"),
    ],
    ids=["rejected:duplicate-top-level-key", "rejected:duplicate-nested-key"],
)
def test_a_key_given_twice_is_rejected_naming_line_and_key(
    original: str, doubled: str, key: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """PyYAML keeps the last of two equal keys without a word: the spec would show one primary
    metric and decide on another. The loader refuses, naming the file, the line and the key."""
    spec = write_catalog(tmp_path / "catalog")
    text = yaml.safe_dump(spec_data(), sort_keys=False)
    assert original in text
    first_line = text[: text.index(original)].count("\n") + 1
    spec.write_text(text.replace(original, doubled))
    assert _analyze(spec, tmp_path) == 2
    message = capsys.readouterr().err
    assert message.count("\n") == 1 and "Traceback" not in message
    assert f"{EXPERIMENT_ID}.yaml, line {first_line + 1}: key '{key}' appears twice" in message
    assert f"(first on line {first_line})" in message


def test_a_metric_defined_twice_in_the_catalog_is_rejected(tmp_path: Path) -> None:
    catalog = (PROJECT_ROOT / "catalog" / "metrics.yaml").read_text()
    twice = catalog + "  ctr:\n    type: mean\n    event: click\n    direction: increase\n"
    (tmp_path / "metrics.yaml").write_text(twice)
    with pytest.raises(SpecError, match=r"metrics.yaml, line \d+: key 'ctr' appears twice"):
        load_metric_catalog(tmp_path / "metrics.yaml")


def test_yaml_anchors_may_be_overridden(tmp_path: Path) -> None:
    """A merge key ("<<: *defaults") followed by an override is not a repeated key."""
    text = "defaults: &d {type: mean, direction: increase}\nmetrics:\n  clicks:\n    <<: *d\n"
    text += "    type: mean\n    event: click\n"
    (tmp_path / "metrics.yaml").write_text(text)
    with pytest.raises(SpecError, match="defaults"):  # rejected for its extra field only
        load_metric_catalog(tmp_path / "metrics.yaml")


def test_overlapping_experiments_on_the_same_units(tmp_path: Path) -> None:
    """Same unit, same hash_salt, overlapping windows: the registry rejects the second spec."""
    write_catalog(tmp_path)
    clone = spec_data(id="fault_test_copy", start=END.isoformat(), end="2026-04-30")
    (tmp_path / "experiments" / "fault_test_copy.yaml").write_text(yaml.safe_dump(clone))
    with pytest.raises(SpecError) as error:
        load_experiments(tmp_path / "experiments", metric_catalog())
    message = str(error.value)
    assert "fault_test_copy.yaml: field 'hash_salt'" in message
    assert f"between {END} and {END}" in message and "own hash_salt" in message
    assert str(spec_data()["hash_salt"]) not in message  # the salt itself is never printed
    # Its own salt, or a window that does not overlap, is fine.
    clone["hash_salt"] = "another-salt"
    (tmp_path / "experiments" / "fault_test_copy.yaml").write_text(yaml.safe_dump(clone))
    assert set(load_experiments(tmp_path / "experiments", metric_catalog())) == {
        EXPERIMENT_ID,
        "fault_test_copy",
    }
