"""Running the warehouse's SQL: the statements of ``sql/*.sql``, their named parameters, and
transactions (docs/architecture.md, decisions 1 and 2).

The statements live in ``sql/*.sql`` with named, bound parameters (``$name``): each statement gets
the parameters it uses. The only SQL assembled in Python is from validated identifiers (segment
column names of a spec), fixed readers, and the ``@marker@`` terms a builder fills in
(:func:`fill_markers`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cache
from importlib import resources
from typing import Any

import duckdb

_PARAMETER = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


@cache
def sql_statements(name: str) -> tuple[str, ...]:
    """The statements of ``sql/<name>.sql``, its comment lines left out (read once)."""
    text = resources.files("exp_dagster.warehouse").joinpath("sql", f"{name}.sql").read_text()
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    return tuple(s.strip() for s in body.split(";\n") if s.strip().rstrip(";").strip())


def execute(
    conn: duckdb.DuckDBPyConnection, statement: str, params: Mapping[str, Any]
) -> duckdb.DuckDBPyConnection:
    """Run one statement with the parameters it names (``$name``) out of ``params``."""
    used = set(_PARAMETER.findall(statement))
    return conn.execute(statement, {k: v for k, v in params.items() if k in used})


def run_sql(conn: duckdb.DuckDBPyConnection, name: str, params: Mapping[str, Any]) -> None:
    """Run every statement of ``sql/<name>.sql`` with the parameters each one uses."""
    for statement in sql_statements(name):
        execute(conn, statement, params)


def query(
    conn: duckdb.DuckDBPyConnection, name: str, params: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Run the single ``SELECT`` of ``sql/<name>.sql`` and return its rows as dicts."""
    (statement,) = sql_statements(name)
    cursor = execute(conn, statement, params)
    columns = [d[0] for d in cursor.description or []]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def fetch_dicts(
    conn: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()
) -> list[dict[str, Any]]:
    """Run ``sql`` and return its rows as dicts."""
    cursor = conn.execute(sql, params)
    columns = [d[0] for d in cursor.description or []]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


@contextmanager
def transaction(conn: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """All or nothing: a run killed mid-write leaves the partition as it was."""
    conn.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def scalar(conn: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()) -> Any:
    """The first column of the first row of ``sql`` (None without a row)."""
    row = conn.execute(sql, params).fetchone()
    return row[0] if row else None


def fill_markers(statement: str, terms: Mapping[str, str]) -> str:
    """``statement`` with each ``@marker@`` replaced by its SQL in ``terms``; an AssertionError
    if one is left unfilled."""
    for marker, text in terms.items():
        statement = statement.replace(f"@{marker}@", text)
    left = re.search(r"@[a-z_]+@", statement)
    if left:
        raise AssertionError(f"marker {left.group()} was left unfilled in: {statement[:80]}")
    return statement
