"""The spec reference (``docs/spec.md``), generated from the spec models so it cannot go stale.

Every field of an experiment spec and of a metric definition, with its type, default and
meaning, read from the pydantic models of :mod:`exp_dagster.spec` and the ``Attributes:``
sections of their docstrings. ``tests/unit/test_spec_reference.py`` fails when a field has no
description or when ``docs/spec.md`` differs from what this module renders; regenerate it with
``python -m exp_dagster.spec_reference > docs/spec.md``.
"""

from __future__ import annotations

import inspect
import re
import sys
import types
import typing
from typing import Any, Literal, Union, get_args, get_origin

from annotated_types import Ge, Gt, Le, Lt, MinLen
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from exp_dagster.spec import (
    IDENTIFIER_PATTERN,
    NAME_PATTERN,
    AnalysisPolicy,
    BanditSpec,
    DiDSpec,
    ExperimentSpec,
    GuardrailSpec,
    HoldoutLaunch,
    HoldoutSpec,
    MetricRoles,
    MetricSpec,
    MetricTreeSpec,
    OECSpec,
    RampPhase,
    VariantSpec,
)

# (model, where it sits in a file, one sentence); the order of the page.
SECTIONS: tuple[tuple[type[BaseModel], str, str], ...] = (
    (
        ExperimentSpec,
        "catalog/experiments/<id>.yaml",
        "One file per experiment; the file's name does not matter, its `id` does.",
    ),
    (VariantSpec, "`variants:` (a list)", "At least two, exactly one with `control: true`."),
    (
        RampPhase,
        "`ramp:` (a list)",
        "Optional: the allocation phases of a ramped rollout, in date order.",
    ),
    (
        HoldoutSpec,
        "`holdout:`",
        "Optional: a long-term holdout, the control kept off a series of launches.",
    ),
    (HoldoutLaunch, "`holdout: launches:` (a list)", "In date order, inside the window."),
    (
        OECSpec,
        "`oec:`",
        "Optional: an overall evaluation criterion, a weighted combination of metrics.",
    ),
    (
        MetricTreeSpec,
        "`metric_tree:`",
        "Optional: a metric decomposed as a product of metrics, to see which branch moved.",
    ),
    (
        DiDSpec,
        "`did:`",
        "Optional: a rollout that was not randomised, analysed by difference in differences.",
    ),
    (
        BanditSpec,
        "`bandit:`",
        "Optional: adaptive allocation, each day's split set by Thompson sampling on a reward.",
    ),
    (MetricRoles, "`metrics:`", "Names from the metric catalog (`catalog/metrics.yaml`)."),
    (GuardrailSpec, "`metrics: guardrails:` (a list)", "A one-sided non-inferiority test each."),
    (
        AnalysisPolicy,
        "`analysis:`",
        "Optional, and so is every field in it: each has a default.",
    ),
    (
        MetricSpec,
        "catalog/metrics.yaml, `metrics: <name>:`",
        "How a metric is computed from the event logs; the key is its `name`.",
    ),
)

_ATTRIBUTE = re.compile(r"^(\s*)([A-Za-z_][A-Za-z0-9_]*(?:, [A-Za-z_][A-Za-z0-9_]*)*): (.*)$")


def attribute_descriptions(model: type[BaseModel]) -> dict[str, str]:
    """The ``Attributes:`` section of ``model``'s docstring, by field name (``a, b: text`` gives
    both fields the text); continuation lines are joined, reST markup made Markdown."""
    doc = inspect.getdoc(model) or ""
    lines = doc.splitlines()
    try:
        start = lines.index("Attributes:") + 1
    except ValueError:
        return {}
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    indent = None
    for line in lines[start:]:
        if not line.strip():
            break
        match = _ATTRIBUTE.match(line)
        if match and (indent is None or len(match.group(1)) == indent):
            indent = len(match.group(1))
            current = [match.group(3).strip()]
            for name in match.group(2).split(", "):
                found[name] = current
        elif current is not None:
            current.append(line.strip())
    return {name: _markdown(" ".join(text)) for name, text in found.items()}


def _markdown(text: str) -> str:
    text = re.sub(
        r":(?:class|func|mod|data):`~?([^`]+)`", lambda m: f"`{m.group(1).split('.')[-1]}`", text
    )
    text = text.replace("``", "`")
    return text.replace("|", "\\|")


def _type_name(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin is Literal:
        return " \\| ".join(f"`{value}`" for value in get_args(annotation))
    if origin is typing.Annotated:
        return _type_name(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        names = [_type_name(arg) for arg in get_args(annotation) if arg is not type(None)]
        optional = type(None) in get_args(annotation)
        return " or ".join(names) + (" or null" if optional else "")
    if origin is list:
        return f"list of {_type_name(get_args(annotation)[0])}"
    if origin is tuple and len(set(get_args(annotation))) == 1:  # e.g. window_days: [d0, d1]
        item = get_args(annotation)[0]
        bounds = ""
        if get_origin(item) is typing.Annotated:
            bounds = _constraints(FieldInfo.merge_field_infos(*get_args(item)[1:]))
        count = len(get_args(annotation))
        return f"list of {count} {_type_name(item)}s" + (f" ({bounds})" if bounds else "")
    if origin is dict:
        key, value = get_args(annotation)
        return f"map {_type_name(key)} → {_type_name(value)}"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"[{annotation.__name__}](#{annotation.__name__.lower()})"
    return {
        "str": "text",
        "int": "integer",
        "float": "number",
        "bool": "true / false",
        "date": "date (YYYY-MM-DD)",
    }.get(getattr(annotation, "__name__", str(annotation)), str(annotation))


_PATTERNS = {
    NAME_PATTERN: "a name: a letter, then up to 63 letters, digits, `_` or `-`",
    IDENTIFIER_PATTERN: "an identifier: a letter or `_`, then up to 63 letters, digits or `_`",
}


def _constraints(info: FieldInfo) -> str:
    words = []
    for item in info.metadata:
        pattern = getattr(item, "pattern", None)
        if pattern is not None:
            words.append(_PATTERNS.get(pattern, f"matching `{pattern}`"))
        if isinstance(item, Gt):
            words.append(f"> {item.gt:g}")
        elif isinstance(item, Ge):
            words.append(f"≥ {item.ge:g}")
        elif isinstance(item, Lt):
            words.append(f"< {item.lt:g}")
        elif isinstance(item, Le):
            words.append(f"≤ {item.le:g}")
        elif isinstance(item, MinLen):
            words.append(f"at least {item.min_length}")
    return ", ".join(words)


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "**required**"
    if info.default_factory is not None:
        value = info.default_factory()  # type: ignore[call-arg]
        if isinstance(value, BaseModel):
            return "(all defaults)"
    else:
        value = info.default
    if value is PydanticUndefined:
        return "**required**"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value == "" or value == [] or value == {}:
        return "empty"
    return f"`{value}`"


def render() -> str:
    """``docs/spec.md``."""
    out = [
        "# Spec reference",
        "",
        "Every field of an experiment spec and of a metric definition: its type, its default",
        "and what it means. Generated from the spec models (`exp_dagster/spec.py`) by",
        "`python -m exp_dagster.spec_reference > docs/spec.md`; a test fails when this page",
        "and the models disagree. A field marked **required** has no default; every other",
        "field may be left out. Unknown fields are refused, naming the file and the field.",
        "",
    ]
    for model, where, sentence in SECTIONS:
        descriptions = attribute_descriptions(model)
        out += [f"## {model.__name__}", "", f"Where: {where}. {sentence}", ""]
        out += ["| field | type | default | meaning |", "| --- | --- | --- | --- |"]
        for name, info in model.model_fields.items():
            kind = _type_name(info.annotation)
            limits = _constraints(info)
            if limits:
                kind += f" ({limits})"
            meaning = descriptions.get(name, "")
            out.append(f"| `{name}` | {kind} | {_default(info)} | {meaning} |")
        out.append("")
    return "\n".join(out)


def missing_descriptions() -> list[str]:
    """``Model.field`` for every field without a description in its model's docstring."""
    return [
        f"{model.__name__}.{name}"
        for model, _, _ in SECTIONS
        for name in model.model_fields
        if name not in attribute_descriptions(model)
    ]


if __name__ == "__main__":
    sys.stdout.write(render())
