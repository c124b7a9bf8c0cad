"""A snapshot of the asset graph: accidental changes to keys, deps, partitions or checks show up
in review. Regenerate deliberately with ``UPDATE_SNAPSHOTS=1 make test``."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import dagster as dg

from exp_dagster.definitions import defs

SNAPSHOT = Path(__file__).parent / "snapshots" / "asset_graph.json"


def _partitions(partitions_def: dg.PartitionsDefinition | None) -> Any:
    if partitions_def is None:
        return None
    if isinstance(partitions_def, dg.MultiPartitionsDefinition):
        return {d.name: type(d.partitions_def).__name__ for d in partitions_def.partitions_defs}
    return type(partitions_def).__name__


def graph() -> dict[str, Any]:
    asset_graph = defs.resolve_asset_graph()
    snapshot: dict[str, Any] = {}
    for key in sorted(asset_graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = asset_graph.get(key)
        snapshot[key.to_user_string()] = {
            "group": node.group_name,
            "deps": sorted(p.to_user_string() for p in node.parent_keys),
            "partitions": _partitions(node.partitions_def),
            "checks": sorted(
                f"{c.name}{' (blocking)' if asset_graph.get(c).blocking else ''}"
                for c in node.check_keys
            ),
            "kinds": sorted(node.kinds),
            "external": not node.is_materializable,
        }
    snapshot["__jobs__"] = sorted(job.name for job in defs.resolve_all_job_defs())
    return snapshot


def test_asset_graph_matches_snapshot() -> None:
    current = graph()
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    assert SNAPSHOT.exists(), f"no snapshot at {SNAPSHOT}; create it with UPDATE_SNAPSHOTS=1"
    assert current == json.loads(SNAPSHOT.read_text())


NON_BLOCKING = {"check_model_logs_schema"}


def test_every_gate_is_blocking_and_every_writer_shares_one_pool() -> None:
    asset_graph = defs.resolve_asset_graph()
    for key in asset_graph.get_all_asset_keys():
        node = asset_graph.get(key)
        for check_key in node.check_keys:
            check = asset_graph.get(check_key)
            # The model-log gate alone does not block: the online decision sits downstream of
            # it (through the parity table), and broken model logs must not stop the A/B verdict.
            expected = check_key.name.endswith("_schema") and check_key.name not in NON_BLOCKING
            assert check.blocking == expected, check_key
    for assets_def in defs.assets or []:
        if isinstance(assets_def, dg.AssetsDefinition) and assets_def.is_materializable:
            pools = {op.pool for op in assets_def.node_def.iterate_op_defs()}
            assert pools == {"duckdb_writer"}, assets_def.node_def.name


# Sphinx roles (:mod:`…`, :py:func:`…`) and reStructuredText literals (``…``), which the UI
# shows raw.
SPHINX_MARKUP = re.compile(r":[a-z]+:`|``")


def descriptions() -> dict[str, str]:
    """Every description the UI shows: assets, checks, jobs, sensors and schedules."""
    asset_graph = defs.resolve_asset_graph()
    found: dict[str, str] = {}
    for key in asset_graph.get_all_asset_keys():
        node = asset_graph.get(key)
        found[f"asset {key.to_user_string()}"] = node.description or ""
        for check_key in node.check_keys:
            found[f"check {check_key.to_user_string()}"] = (
                asset_graph.get(check_key).description or ""
            )
    for job in defs.resolve_all_job_defs():
        found[f"job {job.name}"] = job.description or ""
    for automation in [*(defs.sensors or []), *(defs.schedules or [])]:
        found[f"{type(automation).__name__} {automation.name}"] = automation.description or ""
    return found


def test_descriptions_are_plain_markdown() -> None:
    found = descriptions()
    marked = {name: text for name, text in found.items() if SPHINX_MARKUP.search(text)}
    assert not marked, f"descriptions with Sphinx markup (the UI shows it raw): {marked}"
    # The docstrings did reach the UI, converted: e.g. the decision's policy module.
    assert "(policy: `exp_dagster.decision`)" in found["asset decision"]
    assert "`crossover_units`" in found["asset unit_metrics"]
    materializable = [
        key.to_user_string()
        for key in defs.resolve_asset_graph().get_all_asset_keys()
        if defs.resolve_asset_graph().get(key).is_materializable
    ]
    assert all(found[f"asset {name}"] for name in materializable)
