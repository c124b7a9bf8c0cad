"""Spec validation: every error names the file and the field."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml

from exp_dagster.home import PROJECT_ROOT
from exp_dagster.spec import (
    MetricCatalog,
    SpecError,
    load_experiment,
    load_experiments,
    load_metric_catalog,
    parse_experiment,
)

CATALOG = PROJECT_ROOT / "catalog"


@pytest.fixture(scope="module")
def metrics() -> MetricCatalog:
    return load_metric_catalog(CATALOG / "metrics.yaml")


def demo_spec() -> dict[str, Any]:
    return yaml.safe_load((CATALOG / "experiments" / "ranker_v2.yaml").read_text())


def test_the_shipped_catalog_is_valid(metrics: MetricCatalog) -> None:
    experiments = load_experiments(CATALOG / "experiments", metrics)
    spec = experiments["ranker_v2"].spec
    assert spec.control == "control"
    assert spec.treatments == ["treatment"]
    assert spec.role_of("ctr") == "primary"
    assert spec.role_of("latency_p95") == "guardrail"
    assert spec.role_of("watch_time") == "secondary"


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (lambda s: s["variants"][1].update(weight=0.6), "variants", "sum to 1"),
        (lambda s: s["variants"][1].update(control=True), "variants", "exactly one"),
        (lambda s: s.update(end="2026-09-01"), "(top level)", "before 'start'"),
        (lambda s: s.update(alpha=0.7), "alpha", "less than 0.5"),
        (
            lambda s: s["metrics"]["guardrails"][0].pop("margin"),
            "metrics.guardrails.0.margin",
            "required",
        ),
        (lambda s: s.update(colour="blue"), "colour", "not permitted"),
        (lambda s: s.update(id="bad id!"), "id", "pattern"),
        (lambda s: s.update(start="yesterday"), "start", "date"),
    ],
)
def test_invalid_specs_name_the_file_and_field(
    metrics: MetricCatalog, change: Any, field: str, words: str
) -> None:
    spec = demo_spec()
    change(spec)
    with pytest.raises(SpecError) as error:
        parse_experiment(spec, "catalog/experiments/x.yaml", metrics)
    message = str(error.value)
    assert message.startswith("catalog/experiments/x.yaml")
    assert f"field '{field}'" in message
    assert words in message


def test_unknown_metric_lists_the_known_ones(metrics: MetricCatalog) -> None:
    spec = demo_spec()
    spec["metrics"]["secondary"] = ["dwell_tme"]
    with pytest.raises(
        SpecError,
        match=r"x.yaml: field 'metrics'.*dwell_tme.*Known metrics: clicks, conversion, ctr",
    ):
        parse_experiment(spec, "x.yaml", metrics)


def test_file_name_must_match_id(tmp_path: Path, metrics: MetricCatalog) -> None:
    path = tmp_path / "other.yaml"
    path.write_text(yaml.safe_dump(demo_spec()))
    with pytest.raises(SpecError, match=r"other.yaml: field 'id' is 'ranker_v2'"):
        load_experiment(path, metrics)


def test_broken_yaml_and_metric_catalog(tmp_path: Path) -> None:
    broken = tmp_path / "metrics.yaml"
    broken.write_text("metrics: [unclosed\n")
    with pytest.raises(SpecError, match=r"metrics.yaml, line 2: not valid YAML \(expected"):
        load_metric_catalog(broken)
    broken.write_text("metrics:\n  ctr: {type: ratio, numerator: click, direction: increase}\n")
    with pytest.raises(SpecError, match=r"field 'metrics.ctr'.*denominator"):
        load_metric_catalog(broken)


def test_version_changes_with_the_spec_and_with_metric_definitions(
    tmp_path: Path, metrics: MetricCatalog
) -> None:
    base = parse_experiment(demo_spec(), "x.yaml", metrics)
    assert parse_experiment(demo_spec(), "y.yaml", metrics).version == base.version
    changed = demo_spec()
    changed["alpha"] = 0.01
    assert parse_experiment(changed, "x.yaml", metrics).version != base.version
    redefined = MetricCatalog.model_validate(
        {
            "metrics": {
                **{k: v.model_dump() for k, v in metrics.metrics.items()},
                "ctr": {
                    "type": "ratio",
                    "numerator": "click",
                    "denominator": "request",
                    "direction": "increase",
                },
            }
        }
    )
    assert parse_experiment(demo_spec(), "x.yaml", redefined).version != base.version


# ── ramped rollouts ─────────────────────────────────────────────────────────────────────────

RAMP: list[dict[str, Any]] = [
    {"start": "2026-10-01", "weights": {"control": 0.99, "treatment": 0.01}},
    {"start": "2026-10-03", "weights": {"control": 0.95, "treatment": 0.05}},
    {"start": "2026-10-06", "weights": {"control": 0.5, "treatment": 0.5}},
]


def ramped_spec() -> dict[str, Any]:
    spec = demo_spec()
    spec["ramp"] = [dict(phase, weights=dict(phase["weights"])) for phase in RAMP]
    return spec


def test_a_ramp_gives_each_day_its_phase_weights(metrics: MetricCatalog) -> None:
    spec = parse_experiment(ramped_spec(), "x.yaml", metrics).spec
    assert spec.ramp is not None and len(spec.ramp) == 3
    day = dt.date(2026, 10, 1)
    expected = [0.01, 0.01, 0.05, 0.05, 0.05, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]
    assert [spec.weights_on(day + dt.timedelta(days=i))["treatment"] for i in range(14)] == (
        expected
    )
    assert list(spec.weights_on(day)) == ["control", "treatment"]  # the variants' order
    assert [spec.phase_index(day + dt.timedelta(days=i)) for i in (0, 2, 4, 5, 13)] == [
        0,
        1,
        1,
        2,
        2,
    ]
    plain = parse_experiment(demo_spec(), "x.yaml", metrics).spec
    assert plain.phase_index(day) is None and plain.weights_on(day) == plain.weights


def test_without_a_ramp_the_spec_version_is_unchanged(metrics: MetricCatalog) -> None:
    base = parse_experiment(demo_spec(), "x.yaml", metrics)
    explicit = demo_spec()
    explicit["ramp"] = None
    assert parse_experiment(explicit, "x.yaml", metrics).version == base.version
    # The hash of the catalog spec as it was before the option existed.
    assert base.version == "d5a7eab2877b"
    assert parse_experiment(ramped_spec(), "x.yaml", metrics).version != base.version


def _ramp_change(index: int, **fields: Any) -> Any:
    return lambda s: s["ramp"][index].update(fields)


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (_ramp_change(0, start="2026-10-02"), "ramp", "must start on the experiment's start"),
        (_ramp_change(2, start="2026-10-15"), "ramp", "phase 2 (start 2026-10-15) starts outside"),
        (_ramp_change(2, start="2026-10-02"), "ramp", "increasing date order"),
        (_ramp_change(1, start="2026-10-01"), "ramp", "increasing date order"),
        (
            _ramp_change(1, weights={"control": 0.9, "treatment": 0.05}),
            "ramp.1.weights",
            "sum to 1, they sum to 0.95",
        ),
        (
            _ramp_change(1, weights={"control": 1.0, "treatment": 0.0}),
            "ramp.1.weights",
            "must be in (0, 1]",
        ),
        (
            _ramp_change(1, weights={"control": 0.95, "treatmnet": 0.05}),
            "ramp",
            "phase 1 (start 2026-10-03): 'weights' names ['control', 'treatmnet']",
        ),
        (
            _ramp_change(2, weights={"control": 0.6, "treatment": 0.4}),
            "ramp",
            "the last phase's weights",
        ),
        (lambda s: s.update(ramp=[]), "ramp", "at least 1 item"),
        (lambda s: s["ramp"][0].update(share=1), "ramp.0.share", "not permitted"),
        (lambda s: s["segments"].append("ramp_phase"), "ramp", "the ramp's own segment"),
        (
            lambda s: s.update(analysis={"stratify_by": "platform"}),
            "(top level)",
            "cannot be combined with 'ramp'",
        ),
    ],
)
def test_invalid_ramps_name_the_field(
    metrics: MetricCatalog, change: Any, field: str, words: str
) -> None:
    spec = ramped_spec()
    change(spec)
    with pytest.raises(SpecError) as error:
        parse_experiment(spec, "catalog/experiments/x.yaml", metrics)
    message = str(error.value)
    assert f"field '{field}'" in message, message
    assert words in message, message


def test_a_ramp_needs_a_metric_with_per_phase_statistics(metrics: MetricCatalog) -> None:
    spec = ramped_spec()
    spec["metrics"] = {"primary": "latency_p95"}
    with pytest.raises(SpecError, match=r"field 'ramp': no metric .*\(a quantile has none\)"):
        parse_experiment(spec, "x.yaml", metrics)


# ── long-term holdouts ──────────────────────────────────────────────────────────────────────


def holdout_spec() -> dict[str, Any]:
    spec = demo_spec()
    spec["holdout"] = {
        "group": "control",
        "launches": [
            {"name": "ranker_v2", "date": "2026-10-03"},
            {"name": "notif_v3", "date": "2026-10-08"},
        ],
    }
    return spec


def test_a_holdout_lists_the_launches_by_each_day(metrics: MetricCatalog) -> None:
    spec = parse_experiment(holdout_spec(), "x.yaml", metrics).spec
    assert spec.holdout is not None and spec.holdout.group == spec.control
    names = [
        [launch.name for launch in spec.launches_by(dt.date(2026, 10, day))] for day in (2, 3, 7, 8)
    ]
    assert names == [[], ["ranker_v2"], ["ranker_v2"], ["ranker_v2", "notif_v3"]]
    assert (
        parse_experiment(demo_spec(), "x.yaml", metrics).spec.launches_by(dt.date(2026, 10, 8))
        == []
    )


def test_without_a_holdout_the_spec_version_is_unchanged(metrics: MetricCatalog) -> None:
    explicit = demo_spec()
    explicit["holdout"] = None
    assert parse_experiment(explicit, "x.yaml", metrics).version == "d5a7eab2877b"
    assert parse_experiment(holdout_spec(), "x.yaml", metrics).version != "d5a7eab2877b"


def _launch_change(index: int, **fields: Any) -> Any:
    return lambda s: s["holdout"]["launches"][index].update(fields)


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (lambda s: s["holdout"].update(group="treatment"), "holdout", "is not the control"),
        (lambda s: s["holdout"].update(group="holdout"), "holdout", "is not a variant"),
        (_launch_change(1, date="2026-10-03"), "holdout", "increasing date order"),
        (_launch_change(1, date="2026-10-02"), "holdout", "launch 1 (notif_v3 on 2026-10-02)"),
        (_launch_change(0, date="2026-09-30"), "holdout", "outside the experiment's window"),
        (_launch_change(1, date="2026-10-15"), "holdout", "outside the experiment's window"),
        (_launch_change(1, name="ranker_v2"), "holdout", "'ranker_v2' is used twice"),
        (_launch_change(1, when="2026-10-09"), "holdout.launches.1.when", "not permitted"),
        (lambda s: s["holdout"].update(launches=[]), "holdout.launches", "at least 1 item"),
        (lambda s: s["holdout"].pop("group"), "holdout.group", "required"),
        (
            lambda s: s.update(segments=["launch_period"]),
            "holdout",
            "the holdout's own segment",
        ),
        (
            lambda s: s.update(ramp=[dict(RAMP[0], weights={"control": 0.5, "treatment": 0.5})]),
            "holdout",
            "cannot be combined with 'ramp'",
        ),
    ],
)
def test_invalid_holdouts_name_the_field(
    metrics: MetricCatalog, change: Any, field: str, words: str
) -> None:
    spec = holdout_spec()
    change(spec)
    with pytest.raises(SpecError) as error:
        parse_experiment(spec, "catalog/experiments/x.yaml", metrics)
    message = str(error.value)
    assert f"field '{field}'" in message, message
    assert words in message, message


# ── OEC and metric trees ─────────────────────────────────────────────────────────────────────


def oec_spec() -> dict[str, Any]:
    spec = demo_spec()
    spec["oec"] = {
        "name": "oec_engagement",
        "components": {"watch_time": 0.5, "conversion": 0.3, "ctr": 0.2},
    }
    return spec


def test_an_oec_and_a_tree_name_their_components(metrics: MetricCatalog) -> None:
    extended = MetricCatalog.model_validate(
        {
            "metrics": {
                **{name: m.model_dump() for name, m in metrics.metrics.items()},
                "clicks": {"type": "mean", "event": "click", "direction": "increase"},
                "impression_value": {
                    "type": "mean",
                    "event": "impression",
                    "direction": "increase",
                },
            }
        }
    )
    spec = oec_spec()
    spec["metrics"]["secondary"] += ["clicks", "impression_value"]
    spec["metric_tree"] = {"root": "clicks", "factors": ["impression_value", "ctr"]}
    resolved = parse_experiment(spec, "x.yaml", extended)
    assert resolved.spec.oec is not None and resolved.spec.oec.normalisation == "relative"
    assert resolved.spec.deciding_metric == "ctr"  # the OEC only reports by default
    assert resolved.cross_component_names == (
        "conversion",
        "ctr.numerator",
        "ctr.denominator",
        "impression_value",
        "watch_time",
    )
    spec["oec"]["decides"] = True
    assert parse_experiment(spec, "x.yaml", extended).spec.deciding_metric == "oec_engagement"
    # A tree whose factors do not multiply to the root is rejected, saying what is left over.
    spec["metric_tree"] = {"root": "clicks", "factors": ["impression_value", "watch_time"]}
    with pytest.raises(SpecError, match=r"field 'metric_tree.factors'.*is not the root 'clicks'"):
        parse_experiment(spec, "x.yaml", extended)


def test_without_an_oec_or_a_tree_the_spec_version_is_unchanged(metrics: MetricCatalog) -> None:
    base = parse_experiment(demo_spec(), "x.yaml", metrics)
    explicit = demo_spec()
    explicit.update(oec=None, metric_tree=None)
    assert parse_experiment(explicit, "x.yaml", metrics).version == base.version
    assert base.version == "d5a7eab2877b"
    assert parse_experiment(oec_spec(), "x.yaml", metrics).version != base.version
    assert not base.cross_components  # nothing for the warehouse to sum


def _oec_change(**fields: Any) -> Any:
    return lambda s: s["oec"].update(fields)


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (
            lambda s: (
                s["metrics"]["secondary"].remove("revenue"),
                s["oec"].update(components={"revenue": 1.0}),
            ),
            "oec",
            "not metrics of this experiment",
        ),
        (_oec_change(components={"ctr": 0.0}), "oec.components", "other than 0"),
        (_oec_change(name="ctr"), "oec", "also a metric of this experiment"),
        (_oec_change(normalisation="log"), "oec.normalisation", "'absolute' or 'relative'"),
        (_oec_change(components={"ctr": -1.0}), "oec.components", "against their metrics"),
        (
            lambda s: s["oec"]["components"].update(latency_p95=-0.1),
            "oec.components",
            "a quantile metric has no per-unit value",
        ),
        (
            lambda s: s.update(metric_tree={"root": "ctr", "factors": ["ctr"]}),
            "metric_tree",
            "includes the root",
        ),
        (
            lambda s: (
                s["metrics"]["secondary"].remove("revenue"),
                s.update(metric_tree={"root": "revenue", "factors": ["ctr"]}),
            ),
            "metric_tree",
            "not metrics of this experiment",
        ),
        (
            lambda s: s.update(
                ramp=[{"start": s["start"], "weights": {"control": 0.5, "treatment": 0.5}}]
            ),
            "oec",
            "cannot be combined with 'ramp'",
        ),
    ],
)
def test_invalid_oecs_and_trees_name_the_field(
    metrics: MetricCatalog, change: Any, field: str, words: str
) -> None:
    spec = oec_spec()
    change(spec)
    with pytest.raises(SpecError) as error:
        parse_experiment(spec, "catalog/experiments/x.yaml", metrics)
    message = str(error.value)
    assert f"field '{field}'" in message, message
    assert words in message, message


# ── difference in differences (a rollout that was not randomised) ───────────────────────────


def did_spec() -> dict[str, Any]:
    spec = demo_spec()
    spec.pop("hash_salt")
    spec["did"] = {
        "cluster": "country",
        "treated": ["de", "fr"],
        "rollout_date": "2026-10-08",
        "metrics": ["ctr", "watch_time"],
    }
    spec["metrics"]["primary"] = "watch_time"
    spec["metrics"]["secondary"] = ["ctr", "conversion"]
    return spec


def test_a_did_block_names_its_clusters_and_date(metrics: MetricCatalog) -> None:
    spec = did_spec()
    spec["did"]["metrics"] = ["watch_time", "conversion"]
    resolved = parse_experiment(spec, "x.yaml", metrics)
    assert resolved.spec.did is not None
    assert resolved.spec.did.rollout_date == dt.date(2026, 10, 8)
    assert resolved.spec.did.period == "day"
    assert resolved.spec.hash_salt is None


def test_without_a_did_block_the_spec_version_is_unchanged(metrics: MetricCatalog) -> None:
    base = parse_experiment(demo_spec(), "x.yaml", metrics)
    explicit = demo_spec()
    explicit.update(did=None)
    assert parse_experiment(explicit, "x.yaml", metrics).version == base.version
    assert base.version == "d5a7eab2877b"


def _did_change(**fields: Any) -> Any:
    return lambda s: s["did"].update(fields)


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (_did_change(cluster="market"), "did", "not one of the spec's segments"),
        (_did_change(metrics=["watch_time", "revenue_x"]), "did", "not metrics of this"),
        (_did_change(metrics=["conversion"]), "did", "must include the primary metric"),
        (_did_change(rollout_date="2026-10-01"), "did", "must be after the start"),
        (_did_change(rollout_date="2026-10-15"), "did", "on or before the end"),
        (_did_change(treated=[]), "did.treated", "at least 1"),
        (_did_change(treated=["de", "de"]), "did.treated", "more than once"),
        (_did_change(period="week"), "did.period", "'day'"),
        (lambda s: s.update(hash_salt="salt"), "did", "remove 'hash_salt'"),
        (
            lambda s: s.update(
                ramp=[{"start": s["start"], "weights": {"control": 0.5, "treatment": 0.5}}]
            ),
            "did",
            "cannot be combined with 'ramp'",
        ),
        (
            lambda s: s["did"]["metrics"].append("ctr"),
            "did",
            "more than once",
        ),
    ],
)
def test_invalid_did_blocks_name_the_field(
    metrics: MetricCatalog, change: Any, field: str, words: str
) -> None:
    spec = did_spec()
    change(spec)
    with pytest.raises(SpecError) as error:
        parse_experiment(spec, "catalog/experiments/x.yaml", metrics)
    message = str(error.value)
    assert f"field '{field}" in message, message
    assert words in message, message


def test_a_did_metric_needs_a_daily_value_per_unit(metrics: MetricCatalog) -> None:
    spec = did_spec()
    with pytest.raises(SpecError, match=r"field 'did.metrics': metric 'ctr'.*ratio metric"):
        parse_experiment(spec, "x.yaml", metrics)
    spec["did"]["metrics"] = ["watch_time", "latency_p95"]
    spec["metrics"]["guardrails"] = [{"metric": "latency_p95", "margin": 0.05}]
    with pytest.raises(SpecError, match=r"metric 'latency_p95'.*quantile metric"):
        parse_experiment(spec, "x.yaml", metrics)


# ── bandit allocation ───────────────────────────────────────────────────────────────────────


def bandit_spec(**fields: Any) -> dict[str, Any]:
    spec = demo_spec()
    spec.pop("hash_salt")  # the serving system assigns by the bandit's split, not the hash
    spec["bandit"] = {"metric": "conversion", **fields}
    return spec


def test_a_bandit_defaults_to_thompson_on_its_metric(metrics: MetricCatalog) -> None:
    spec = parse_experiment(bandit_spec(), "x.yaml", metrics).spec
    assert spec.bandit is not None
    assert (spec.bandit.algorithm, spec.bandit.floor, spec.bandit.burn_in_days) == (
        "thompson",
        0.01,
        1,
    )
    assert spec.bandit.top_two_beta == 0.5
    assert spec.bandit_metric == "conversion"
    assert spec.allocation_segment == "allocation_day"
    assert spec.allocation_starts == spec.days()
    primary = bandit_spec()
    primary["metrics"] = {"primary": "watch_time"}
    primary["bandit"] = {"algorithm": "top_two_thompson"}
    assert parse_experiment(primary, "x.yaml", metrics).spec.bandit_metric == "watch_time"
    assert parse_experiment(demo_spec(), "x.yaml", metrics).spec.bandit_metric is None


def test_without_a_bandit_the_spec_version_is_unchanged(metrics: MetricCatalog) -> None:
    explicit = demo_spec()
    explicit["bandit"] = None
    assert parse_experiment(explicit, "x.yaml", metrics).version == "d5a7eab2877b"
    assert parse_experiment(bandit_spec(), "x.yaml", metrics).version != "d5a7eab2877b"


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (lambda s: s["bandit"].update(metric="clicks"), "bandit", "not one of this experiment's"),
        (lambda s: s["bandit"].update(metric="ctr"), "bandit.metric", "is a ratio metric"),
        (lambda s: s["bandit"].update(metric="latency_p95"), "bandit.metric", "a quantile"),
        (lambda s: s["bandit"].update(floor=0.6), "bandit.floor", "less than 0.5"),
        (
            lambda s: (
                s.update(
                    variants=[
                        {"name": "control", "weight": 0.9, "control": True},
                        {"name": "treatment", "weight": 0.1},
                    ]
                )
                or s["bandit"].update(floor=0.2)
            ),
            "bandit",
            "above the planned weight of treatment",
        ),
        (lambda s: s["bandit"].update(algorithm="ucb"), "bandit.algorithm", "thompson"),
        (lambda s: s.update(hash_salt="salt"), "bandit", "cannot be combined with 'hash_salt'"),
        (
            lambda s: s.update(segments=["platform", "allocation_day"]),
            "bandit",
            "'allocation_day' is the bandit's own segment",
        ),
        (lambda s: s["bandit"].update(top_two_beta=1.0), "bandit.top_two_beta", "less than 1"),
        (lambda s: s["bandit"].update(burn_in_days=0), "bandit.burn_in_days", "greater than"),
        (
            lambda s: s.update(ramp=[dict(RAMP[0], weights={"control": 0.5, "treatment": 0.5})]),
            "bandit",
            "cannot be combined with 'ramp'",
        ),
        (
            lambda s: s.update(
                holdout={
                    "group": "control",
                    "launches": [{"name": "ranker_v2", "date": "2026-10-03"}],
                }
            ),
            "bandit",
            "cannot be combined with 'holdout'",
        ),
        (
            lambda s: s.update(oec=oec_spec()["oec"]),
            "bandit",
            "cannot be combined with 'oec' yet",
        ),
        (
            lambda s: s.update(
                did={
                    "cluster": "country",
                    "treated": ["de"],
                    "rollout_date": "2026-10-08",
                    "metrics": ["ctr"],
                }
            ),
            "bandit",
            "cannot be combined with 'did' yet",
        ),
        (
            lambda s: s.update(analysis={"stratify_by": "platform"}),
            "(top level)",
            "cannot be combined with 'bandit'",
        ),
    ],
)
def test_invalid_bandits_name_the_field(
    metrics: MetricCatalog, change: Any, field: str, words: str
) -> None:
    spec = bandit_spec()
    change(spec)
    with pytest.raises(SpecError) as error:
        parse_experiment(spec, "catalog/experiments/x.yaml", metrics)
    message = str(error.value)
    assert f"field '{field}'" in message, message
    assert words in message, message
