"""What every asset module shares: gate evaluation, metadata helpers, the writer pool."""

from __future__ import annotations

import inspect
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import dagster as dg
import duckdb

from exp_dagster.text import markdown_from_docstring
from exp_dagster.warehouse import tables as registry

# pandas and pandera (nearly a second together) are imported by the gates that run, not with the
# code location: every run process and code server imports the asset modules before anything else.
if TYPE_CHECKING:
    import pandas as pd
    import pandera.pandas as pa

# Every asset that writes the DuckDB file runs in this pool; dagster.yaml limits it to one
# op at a time, so parallel runs and backfills queue instead of failing on the file lock.
WRITER_POOL = "duckdb_writer"
OWNERS = ["team:experimentation"]
# Gates validate every row of a partition up to this many, and a seeded uniform sample of this
# many above it, so a gate never pulls a huge partition into pandas (pandera checks text columns
# row by row in Python: a million rows cost seconds). Row accounting is always exact, in SQL, and
# the values a gate checks were already constrained by the SQL that wrote them (NOT NULL columns,
# quarantine of non-finite values); the gate is the contract's second line of defence.
GATE_ROW_LIMIT = 100_000


GROUP = "experiment_analysis"


def _description(function: Callable[..., object]) -> str | None:
    """The docstring as plain Markdown for the UI (which shows Sphinx roles as raw text)."""
    return markdown_from_docstring(inspect.getdoc(function) or "") or None


def writer_asset(
    *,
    partitions_def: dg.PartitionsDefinition | None,
    deps: Sequence[dg.CoercibleToAssetDep],
    check_specs: Sequence[dg.AssetCheckSpec] = (),
    kinds: Sequence[str] = ("duckdb",),
) -> Callable[[Callable[..., dg.MaterializeResult]], dg.AssetsDefinition]:
    """``@dg.asset`` with what every warehouse-writing asset shares: group, owners, writer pool,
    and the docstring as plain Markdown for the UI."""

    def decorate(function: Callable[..., dg.MaterializeResult]) -> dg.AssetsDefinition:
        return dg.asset(
            partitions_def=partitions_def,
            deps=list(deps),
            group_name=GROUP,
            kinds=set(kinds),
            owners=OWNERS,
            pool=WRITER_POOL,
            check_specs=[partitioned_check(spec, partitions_def) for spec in check_specs],
            description=_description(function),
        )(function)

    return decorate


def partitioned_check(
    spec: dg.AssetCheckSpec, partitions_def: dg.PartitionsDefinition | None
) -> dg.AssetCheckSpec:
    """The check partitioned like its asset, so the UI keeps its result per partition (the
    latest one of each partition, and each partition's history) instead of one stream of every
    experiment and day's results mixed together. Dagster marks partitioned checks a preview
    feature: its warning is silenced here, once, for these checks only."""
    if partitions_def is None or spec.partitions_def is not None:
        return spec
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return dg.AssetCheckSpec(
            name=spec.name,
            asset=spec.asset_key,
            description=spec.description,
            blocking=spec.blocking,
            additional_deps=spec.additional_deps,
            metadata=spec.metadata,
            automation_condition=spec.automation_condition,
            partitions_def=partitions_def,
        )


def table_spec(name: str, deps: Sequence[dg.CoercibleToAssetDep]) -> dg.AssetSpec:
    """A warehouse table that an asset body writes beside its own (see :func:`writer_tables`),
    described by its entry in the table registry (``exp_dagster/warehouse/tables.py``).

    ``deps`` are the tables this one is computed from, for the same partition (a day of the
    shared daily tables maps to that day of every experiment)."""
    entry = registry.table(name)
    return dg.AssetSpec(
        key=name,
        description=(
            f"One row: {entry.holds}. Written by the `{entry.step}` step, in one transaction "
            f"with the other tables of its multi-asset."
        ),
        deps=list(deps),
        group_name=GROUP,
        kinds={"duckdb"},
        owners=OWNERS,
    )


def writer_tables(
    *,
    partitions_def: dg.PartitionsDefinition,
    deps: Sequence[dg.CoercibleToAssetDep],
    tables: Sequence[dg.AssetSpec],
    check_specs: Sequence[dg.AssetCheckSpec] = (),
    kinds: Sequence[str] = ("duckdb",),
) -> Callable[[Callable[..., tuple[dg.MaterializeResult, ...]]], dg.AssetsDefinition]:
    """:func:`writer_asset` for a body that writes several tables in one transaction: a
    ``@dg.multi_asset`` whose first asset is named after the function (its docstring is the
    asset's description, ``deps`` its upstream tables) and whose others are ``tables``
    (:func:`table_spec`), so the asset graph shows every table the body writes, each with its
    own description, dependencies and checks.

    ``tables`` must be the tables the table registry says the step writes (its internal ones
    aside): a table added to one and not the other fails when the code location loads.

    The tables are written together or not at all, so the multi-asset cannot be subset: a job
    or automation that selects one of them runs the body, and materialises all of them. The body
    returns one ``MaterializeResult`` per table, each with its ``asset_key``.
    """

    def decorate(body: Callable[..., tuple[dg.MaterializeResult, ...]]) -> dg.AssetsDefinition:
        step = body.__name__
        declared = sorted(spec.key.to_user_string() for spec in tables)
        registered = sorted(name for name in registry.assets_of(step) if name != step)
        if declared != registered:
            raise ValueError(
                f"the step {step} declares the tables {declared} beside its own, but "
                f"exp_dagster/warehouse/tables.py registers {registered} for it: make them agree, "
                f"or mark a table internal in the registry"
            )
        own = dg.AssetSpec(
            key=step,
            description=_description(body),
            deps=list(deps),
            group_name=GROUP,
            kinds=set(kinds),
            owners=OWNERS,
        )
        return dg.multi_asset(
            name=step,
            specs=[own, *tables],
            partitions_def=partitions_def,
            check_specs=[partitioned_check(spec, partitions_def) for spec in check_specs],
            pool=WRITER_POOL,
            can_subset=False,
        )(body)

    return decorate


def table_rows(
    conn: duckdb.DuckDBPyConnection, table: str, where: str, params: Sequence[Any]
) -> int:
    """The rows of one partition of ``table`` (``dagster/row_count`` of a table written beside
    an asset's own)."""
    row = conn.execute(f"SELECT count(*) FROM {table} WHERE {where}", params).fetchone()
    return int(row[0]) if row else 0


def gate_frame(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    where: str,
    params: Sequence[Any],
    schema: pa.DataFrameSchema,
    *,
    total: int | None = None,
    by_unit: tuple[str, int] | None = None,
) -> tuple[pd.DataFrame, int]:
    """The partition's rows for a gate (a seeded sample when large) and the partition's size.

    Only the columns the schema checks are read: converting the others (e.g. the segments map)
    into Python objects would cost more than the validation itself. ``total``, when the caller
    has counted the rows already, saves counting them again. ``by_unit`` is (a table with one
    row per unit under the same ``where``, rows per unit): a large partition is then sampled by
    unit, every row of a seeded sample of units, so that a view (``unit_metrics`` over
    ``unit_metric_rows``) unnests only the sampled units' rows instead of all of them.
    """
    if total is None:
        row = conn.execute(f"SELECT count(*) FROM {table} WHERE {where}", params).fetchone()
        total = int(row[0]) if row else 0
    columns = ", ".join(f'"{name}"' for name in schema.columns)
    sql = f"SELECT {columns} FROM {table} WHERE {where}"
    if total > GATE_ROW_LIMIT and by_unit is not None:
        units_table, rows_per_unit = by_unit
        units = max(1, GATE_ROW_LIMIT // max(1, rows_per_unit))
        sql += (
            f" AND unit_id IN (SELECT unit_id FROM (SELECT unit_id FROM {units_table} "
            f"WHERE {where}) USING SAMPLE reservoir({units} ROWS) REPEATABLE (7))"
        )
        params = [*params, *params]
    elif total > GATE_ROW_LIMIT:
        sql = f"SELECT * FROM ({sql}) USING SAMPLE reservoir({GATE_ROW_LIMIT} ROWS) REPEATABLE (7)"
    return conn.execute(sql, params).fetchdf(), total


def run_gate(
    check_name: str, asset: str, frame: pd.DataFrame, schema: pa.DataFrameSchema, total_rows: int
) -> dg.AssetCheckResult:
    """Validate ``frame`` with ``schema``; failure cases go into the check's metadata."""
    import pandera.pandas as pa

    metadata: dict[str, Any] = {
        "rows_in_partition": total_rows,
        "rows_validated": len(frame),
        "schema": schema.name or asset,
    }
    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as errors:
        cases = errors.failure_cases
        metadata["failure_count"] = len(cases)
        metadata["failure_cases"] = dg.MetadataValue.md(
            cases.head(20).astype(str).to_markdown(index=False)
        )
        summary = "; ".join(
            f"{column}: {check}"
            for column, check in cases[["column", "check"]]
            .astype(str)
            .drop_duplicates()
            .head(5)
            .values
        )
        metadata["summary"] = summary
        return dg.AssetCheckResult(
            check_name=check_name,
            asset_key=asset,
            passed=False,
            severity=dg.AssetCheckSeverity.ERROR,
            description=f"{asset} failed its schema gate: {summary}",
            metadata=metadata,
        )
    return dg.AssetCheckResult(
        check_name=check_name, asset_key=asset, passed=True, metadata=metadata
    )


def gate_spec(name: str, asset: str, description: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(name=name, asset=asset, blocking=True, description=description)


def reasons_table(reasons: Mapping[str, int]) -> dg.MetadataValue:
    if not reasons:
        return dg.MetadataValue.md("_no rows quarantined_")
    lines = ["| reason | rows |", "| --- | ---: |"]
    lines += [f"| {reason} | {count:,} |" for reason, count in reasons.items()]
    return dg.MetadataValue.md("\n".join(lines))


@contextmanager
def timed(metadata: dict[str, Any], key: str = "elapsed_seconds") -> Iterator[None]:
    started = time.perf_counter()
    yield
    metadata[key] = round(time.perf_counter() - started, 3)
