"""The bad-input corpus: clean logs of a small experiment, and the faults injected into them.

Everything is generated here, in code: a fault is a function that writes a landing zone (a few
hundred rows) with one thing wrong, and the outcome exp_dagster owes the user for it:

- **quarantined**: the bad rows land in the quarantine with ``reason`` (row-level faults);
- **rejected**: the read stops with an error naming the file, the column and the fix
  (table-level faults, ``error`` holds the phrases the message must contain);
- **accepted**: a rough edge the input contract tolerates (integer ids, repeats, a sniffed
  delimiter); every row must still be validated.

In every case rows in = rows validated + rows quarantined.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import yaml

from exp_dagster.assignment import assign_variant
from exp_dagster.home import PROJECT_ROOT
from exp_dagster.spec import (
    MetricCatalog,
    ResolvedExperiment,
    load_metric_catalog,
    parse_experiment,
)
from exp_dagster.warehouse.landing import LogKind, LogSource

EXPERIMENT_ID = "fault_test"
START = dt.date(2026, 3, 2)
END = START + dt.timedelta(days=3)
DAY = START + dt.timedelta(days=1)
SALT = "fault-test-2026"
WEIGHTS = {"control": 0.5, "treatment": 0.5}
N_UNITS = 200
Format = Literal["parquet", "csv", "jsonl"]


def spec_data(**overrides: Any) -> dict[str, Any]:
    """The corpus experiment's spec, as the YAML a user writes."""
    spec: dict[str, Any] = {
        "id": EXPERIMENT_ID,
        "description": "the bad-input corpus",
        "unit": "user",
        "hash_salt": SALT,
        "variants": [
            {"name": "control", "weight": 0.5, "control": True},
            {"name": "treatment", "weight": 0.5},
        ],
        "start": START.isoformat(),
        "end": END.isoformat(),
        "pre_period_days": 0,
        "metrics": {
            "primary": "watch_time",
            "secondary": ["conversion", "ctr"],
            "guardrails": [{"metric": "latency_p95", "margin": 0.05}],
        },
        "segments": ["platform"],
    }
    spec.update(overrides)
    return spec


def metric_catalog() -> MetricCatalog:
    return load_metric_catalog(PROJECT_ROOT / "catalog" / "metrics.yaml")


def experiment(**overrides: Any) -> ResolvedExperiment:
    return parse_experiment(spec_data(**overrides), f"{EXPERIMENT_ID}.yaml", metric_catalog())


def write_catalog(root: Path, **overrides: Any) -> Path:
    """A catalog folder (metrics.yaml + experiments/fault_test.yaml); returns the spec's path."""
    (root / "experiments").mkdir(parents=True, exist_ok=True)
    (root / "metrics.yaml").write_text((PROJECT_ROOT / "catalog" / "metrics.yaml").read_text())
    path = root / "experiments" / f"{EXPERIMENT_ID}.yaml"
    path.write_text(yaml.safe_dump(spec_data(**overrides), sort_keys=False))
    return path


# ── clean logs ───────────────────────────────────────────────────────────────────────────────


def unit_ids(n: int = N_UNITS, prefix: str = "user-") -> list[str]:
    return [f"{prefix}{i:04d}" for i in range(n)]


def exposures(day: dt.date = DAY, units: Sequence[str] | None = None) -> pd.DataFrame:
    """One correctly hashed exposure per unit on ``day`` (UTC, ISO 8601 with Z)."""
    ids = list(units if units is not None else unit_ids())
    return pd.DataFrame(
        {
            "experiment_id": EXPERIMENT_ID,
            "unit_id": ids,
            "variant": [assign_variant(SALT, u, WEIGHTS) for u in ids],
            "exposed_at": [
                f"{day.isoformat()}T{1 + i % 20:02d}:{i % 60:02d}:00Z" for i in range(len(ids))
            ],
            "platform": ["ios" if i % 3 else "web" for i in range(len(ids))],
        }
    )


def events(
    day: dt.date = DAY, units: Sequence[str] | None = None, *, lift: float = 0.0
) -> pd.DataFrame:
    """Three to four events per unit on ``day``: watch time, an impression, clicks, latency.

    ``lift`` multiplies the treatment's watch time by ``1 + lift`` (0: an A/A test).
    """
    ids = list(units if units is not None else unit_ids())
    rng = np.random.default_rng(day.toordinal())
    rows: list[tuple[str, str, str, float]] = []
    for i, unit in enumerate(ids):
        when = f"{day.isoformat()}T{2 + i % 20:02d}:{i % 60:02d}:30Z"
        scale = 1 + lift if assign_variant(SALT, unit, WEIGHTS) == "treatment" else 1.0
        rows.append((unit, when, "watch_seconds", round(float(rng.exponential(60)) * scale, 3)))
        rows.append((unit, when, "impression", 1.0))
        if rng.random() < 0.3:
            rows.append((unit, when, "click", 1.0))
        rows.append((unit, when, "latency_ms", round(float(rng.gamma(4, 20)), 3)))
        if rng.random() < 0.05:
            rows.append((unit, when, "purchase", 9.99))
    return pd.DataFrame(rows, columns=["unit_id", "event_time", "event", "value"])


def write(frame: pd.DataFrame, path: Path, fmt: Format | None = None) -> Path:
    """Write ``frame`` as Parquet, CSV or JSON Lines (by ``fmt`` or the path's extension)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = fmt or path.suffix.lstrip(".")  # type: ignore[assignment]
    if fmt == "parquet":
        frame.to_parquet(path, index=False)
    elif fmt == "csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_json(path, orient="records", lines=True)
    return path


def day_folder(root: Path, kind: LogKind, day: dt.date = DAY) -> Path:
    return root / kind / f"date={day.isoformat()}"


def hive(
    root: Path, kind: LogKind, frame: pd.DataFrame, fmt: Format = "parquet", day: dt.date = DAY
) -> LogSource:
    """A hive-style source holding ``frame`` as the one file of ``day``'s folder."""
    write(frame, day_folder(root, kind, day) / f"part-0.{fmt}", fmt)
    return LogSource(kind, root / kind)


def single(root: Path, kind: LogKind, frame: pd.DataFrame, fmt: Format = "csv") -> LogSource:
    """A single-file source holding ``frame``."""
    return LogSource(kind, write(frame, root / f"{kind}.{fmt}", fmt))


# ── faults ───────────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Fault:
    """One fault of the corpus and the outcome exp_dagster owes the user.

    Attributes:
        name: the test id.
        kind: ``exposures`` or ``events``.
        make: writes the landing zone under a folder and returns the source to read.
        rows_in: the rows the partition must account for (None when the read is rejected).
        reason: the quarantine reason (a substring) of the faulty rows; None when accepted.
        quarantined: how many rows must be quarantined, all with ``reason``.
        error: phrases the rejection must contain (the file, the column, the fix).
        day: the partition read.
        spec: overrides of the corpus spec.
    """

    name: str
    kind: LogKind
    make: Callable[[Path], LogSource]
    rows_in: int | None = None
    reason: str | None = None
    quarantined: int = 0
    error: tuple[str, ...] = ()
    day: dt.date = DAY
    spec: dict[str, Any] = field(default_factory=dict)

    @property
    def outcome(self) -> str:
        if self.error:
            return "rejected"
        return "quarantined" if self.reason else "accepted"


def _with(frame: pd.DataFrame, rows: slice, **values: Any) -> pd.DataFrame:
    """``frame`` with ``values`` set on the rows ``rows`` (by position)."""
    changed = frame.copy()
    for column, value in values.items():
        changed[column] = changed[column].astype(object)
        changed.iloc[rows, changed.columns.get_loc(column)] = value
    return changed


def _truncated(root: Path, kind: LogKind, frame: pd.DataFrame) -> LogSource:
    source = hive(root, kind, frame)
    path = day_folder(root, kind) / "part-0.parquet"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return source


def _garbage(root: Path, kind: LogKind) -> LogSource:
    path = day_folder(root, kind) / "part-0.parquet"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"this is not a parquet file\n" * 40)
    return LogSource(kind, root / kind)


def _cut_jsonl(root: Path, kind: LogKind, frame: pd.DataFrame) -> LogSource:
    source = hive(root, kind, frame, "jsonl")
    path = day_folder(root, kind) / "part-0.jsonl"
    text = path.read_text()
    path.write_text(text[: len(text) // 2 + 7])  # cut in the middle of a line
    return source


def _concatenated_csv(root: Path, kind: LogKind, frame: pd.DataFrame) -> LogSource:
    """Two CSV exports glued together, the second keeping its header line."""
    half = len(frame) // 2
    text = frame.iloc[:half].to_csv(index=False) + frame.iloc[half:].to_csv(index=False)
    path = day_folder(root, kind) / "part-0.csv"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    return LogSource(kind, root / kind)


def _latin1_csv(root: Path, kind: LogKind, frame: pd.DataFrame, column: str) -> LogSource:
    """A CSV whose first file is UTF-8 and whose second, from another exporter, is Latin-1."""
    write(frame.iloc[:100], day_folder(root, kind) / "part-0.csv")
    tail = _with(frame.iloc[100:], slice(0, 5), **{column: "Montréal"})
    path = day_folder(root, kind) / "part-1.csv"
    path.write_bytes(tail.to_csv(index=False).encode("latin-1"))
    return LogSource(kind, root / kind)


def _delimited(root: Path, kind: LogKind, frame: pd.DataFrame, sep: str) -> LogSource:
    path = day_folder(root, kind) / "part-0.csv"
    path.parent.mkdir(parents=True)
    frame.to_csv(path, index=False, sep=sep)
    return LogSource(kind, root / kind)


def _float_ids(frame: pd.DataFrame) -> pd.DataFrame:
    """Numeric ids with a gap: pandas stores them as float64 (1.0, 2.0, NaN, …)."""
    ids = pd.Series(np.arange(len(frame), dtype=float))
    ids.iloc[3] = np.nan
    return frame.assign(unit_id=ids.to_numpy())


def _schema_drift(root: Path) -> LogSource:
    """Two files of one day: the second with integer ids, columns reordered, an extra column."""
    ids = [str(i) for i in range(1000, 1000 + N_UNITS)]
    frame = exposures(units=ids)
    write(frame.iloc[:100], day_folder(root, "exposures") / "part-0.parquet")
    later = frame.iloc[100:].assign(unit_id=lambda f: f["unit_id"].astype(int), sdk="v2")
    write(later[list(reversed(later.columns))], day_folder(root, "exposures") / "part-1.parquet")
    return LogSource("exposures", root / "exposures")


def _other_day_only(root: Path, kind: LogKind, frame: pd.DataFrame) -> LogSource:
    return hive(root, kind, frame, day=DAY + dt.timedelta(days=1))


def _flip_variants(frame: pd.DataFrame, rows: slice) -> pd.DataFrame:
    flipped = frame.copy()
    index = flipped.index[rows]
    flipped.loc[index, "variant"] = flipped.loc[index, "variant"].map(
        {"control": "treatment", "treatment": "control"}
    )
    return flipped


def _extra(frame: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([frame, rows], ignore_index=True)


N = N_UNITS
X = exposures
NEXT_DAY = (DAY + dt.timedelta(days=1)).isoformat()
PREVIOUS_DAY = (DAY - dt.timedelta(days=1)).isoformat()

EXPOSURE_FAULTS: list[Fault] = [
    Fault(
        "missing-column",
        "exposures",
        lambda r: hive(r, "exposures", X().drop(columns=["variant"])),
        error=("part-0.parquet", "missing column(s) variant", "Rename"),
    ),
    Fault(
        "renamed-column",
        "exposures",
        lambda r: hive(r, "exposures", X().rename(columns={"exposed_at": "timestamp"})),
        error=("part-0.parquet", "missing column(s) exposed_at", "Found:", "timestamp"),
    ),
    Fault(
        "missing-segment-column",
        "exposures",
        lambda r: hive(r, "exposures", X().drop(columns=["platform"]), "csv"),
        error=("part-0.csv", "missing column(s) platform"),
    ),
    Fault(
        "float-unit-ids",
        "exposures",
        lambda r: hive(r, "exposures", _float_ids(X())),
        error=("part-0.parquet", "column unit_id is DOUBLE", "as text or as an integer"),
    ),
    Fault(
        "integer-unit-ids",
        "exposures",
        lambda r: hive(
            r,
            "exposures",
            X(units=[str(i) for i in range(N)]).assign(unit_id=lambda f: f["unit_id"].astype(int)),
        ),
        rows_in=N,
    ),
    Fault(
        "string-timestamps",
        "exposures",
        lambda r: hive(r, "exposures", _with(X(), slice(0, 5), exposed_at="03/03/2026 10:00")),
        rows_in=N,
        reason="exposed_at is missing or not a timestamp",
        quarantined=5,
    ),
    Fault(
        "epoch-timestamps",
        "exposures",
        lambda r: hive(r, "exposures", _with(X(), slice(0, 4), exposed_at="1772532000"), "csv"),
        rows_in=N,
        reason="exposed_at is missing or not a timestamp",
        quarantined=4,
    ),
    Fault(
        "null-unit-id",
        "exposures",
        lambda r: hive(r, "exposures", _with(X(), slice(0, 3), unit_id=None)),
        rows_in=N,
        reason="unit_id is missing",
        quarantined=3,
    ),
    Fault(
        "invisible-unit-id",
        "exposures",
        lambda r: hive(r, "exposures", _with(X(), slice(0, 3), unit_id="\u200b\u2060"), "csv"),
        rows_in=N,
        reason="unit_id is missing",
        quarantined=3,
    ),
    Fault(
        "invisible-experiment-id",
        "exposures",
        lambda r: hive(r, "exposures", _with(X(), slice(0, 2), experiment_id="\ufeff \t")),
        rows_in=N,
        reason="experiment_id is missing",
        quarantined=2,
    ),
    Fault(
        "null-variant",
        "exposures",
        lambda r: hive(r, "exposures", _with(X(), slice(0, 2), variant=None)),
        rows_in=N,
        reason="unknown variant 'NULL'",
        quarantined=2,
    ),
    Fault(
        "null-exposed-at",
        "exposures",
        lambda r: hive(r, "exposures", _with(X(), slice(0, 2), exposed_at=None), "jsonl"),
        rows_in=N,
        reason="exposed_at is missing or not a timestamp",
        quarantined=2,
    ),
    Fault(
        "null-experiment-id",
        "exposures",
        lambda r: hive(r, "exposures", _with(X(), slice(0, 3), experiment_id=None)),
        rows_in=N,
        reason="experiment_id is missing",
        quarantined=3,
    ),
    Fault(
        "experiment-id-in-other-case",
        "exposures",
        lambda r: hive(r, "exposures", _with(X(), slice(0, 3), experiment_id="Fault_Test ")),
        rows_in=N,
        reason="experiment_id 'Fault_Test ' differs from the spec id 'fault_test'",
        quarantined=3,
    ),
    Fault(
        "other-experiments-rows-ignored",
        "exposures",
        lambda r: hive(
            r, "exposures", _extra(X(), X(units=unit_ids(7, "o-")).assign(experiment_id="other"))
        ),
        rows_in=N,
    ),
    Fault(
        "non-utc-offset-crossing-midnight",
        "exposures",
        lambda r: hive(
            r, "exposures", _with(X(), slice(0, 3), exposed_at=f"{DAY.isoformat()}T01:30:00+05:00")
        ),
        rows_in=N,
        reason=f"exposed_at {PREVIOUS_DAY} is outside its date={DAY.isoformat()} folder",
        quarantined=3,
    ),
    Fault(
        "naive-local-time-past-midnight",
        "exposures",
        lambda r: hive(r, "exposures", _with(X(), slice(0, 2), exposed_at=f"{NEXT_DAY} 00:30:00")),
        rows_in=N,
        reason=f"exposed_at {NEXT_DAY} is outside its date={DAY.isoformat()} folder",
        quarantined=2,
    ),
    Fault(
        "exposed-before-start",
        "exposures",
        lambda r: single(r, "exposures", _extra(X(day=START), X(day=START - dt.timedelta(1))[:4])),
        day=START,
        rows_in=N + 4,
        reason=f"exposed outside the experiment window {START} .. {END}",
        quarantined=4,
    ),
    Fault(
        "exposed-after-end",
        "exposures",
        lambda r: single(r, "exposures", _extra(X(day=END), X(day=END + dt.timedelta(2))[:5])),
        day=END,
        rows_in=N + 5,
        reason=f"exposed outside the experiment window {START} .. {END}",
        quarantined=5,
    ),
    Fault(
        "crossover-same-day",
        "exposures",
        lambda r: hive(r, "exposures", _extra(X(), _flip_variants(X()[:3], slice(0, 3)))),
        spec={"hash_salt": None},
        rows_in=N + 3,
        reason="unit exposed to several variants on one day (control, treatment)",
        quarantined=6,
    ),
    Fault(
        "unknown-variant",
        "exposures",
        lambda r: hive(r, "exposures", _with(X(), slice(0, 3), variant="variant_c")),
        rows_in=N,
        reason="unknown variant 'variant_c' (the spec has control, treatment)",
        quarantined=3,
    ),
    Fault(
        "variant-label-in-other-case",
        "exposures",
        lambda r: hive(r, "exposures", _with(X(), slice(0, 2), variant="Treatment")),
        rows_in=N,
        reason="unknown variant 'Treatment'",
        quarantined=2,
    ),
    Fault(
        "variant-disagrees-with-hash",
        "exposures",
        lambda r: hive(r, "exposures", _flip_variants(X(), slice(0, 4))),
        rows_in=N,
        reason="disagrees with the deterministic hash",
        quarantined=4,
    ),
    Fault(
        "duplicate-exposure-rows",
        "exposures",
        lambda r: hive(r, "exposures", _extra(X(), X()[:10])),
        rows_in=N + 10,
    ),
    Fault(
        "missing-day-folder",
        "exposures",
        lambda r: _other_day_only(r, "exposures", X()),
        error=(f"no date={DAY.isoformat()} folder", "fault_test", "re-export"),
    ),
    Fault(
        "empty-day-file",
        "exposures",
        lambda r: hive(r, "exposures", X()[:0], "csv"),
        rows_in=0,
    ),
    Fault(
        "truncated-parquet",
        "exposures",
        lambda r: _truncated(r, "exposures", X()),
        error=("part-0.parquet", "cannot be read as parquet", "truncated"),
    ),
    Fault(
        "corrupt-parquet",
        "exposures",
        lambda r: _garbage(r, "exposures"),
        error=("part-0.parquet", "cannot be read as parquet", "Re-export"),
    ),
    Fault(
        "truncated-jsonl",
        "exposures",
        lambda r: _cut_jsonl(r, "exposures", X()),
        error=("part-0.jsonl", "cannot be read as json", "truncated"),
    ),
    Fault(
        "csv-stray-header",
        "exposures",
        lambda r: _concatenated_csv(r, "exposures", X()),
        rows_in=N + 1,
        reason="a repeated header line",
        quarantined=1,
    ),
    Fault(
        "csv-semicolon-delimiter",
        "exposures",
        lambda r: _delimited(r, "exposures", X(), ";"),
        rows_in=N,
    ),
    Fault(
        "mixed-encodings",
        "exposures",
        lambda r: _latin1_csv(r, "exposures", X(), "platform"),
        error=("part-1.csv", "not UTF-8", "re-save it as UTF-8"),
    ),
    Fault("schema-drift-between-files", "exposures", _schema_drift, rows_in=N),
]


def _events(units: int = 100) -> pd.DataFrame:
    return events(units=unit_ids(units))


E = _events
E_ROWS = len(_events())


def _event_ids(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(event_id=[f"ev-{i}" for i in range(len(frame))])


EVENT_FAULTS: list[Fault] = [
    Fault(
        "missing-column",
        "events",
        lambda r: hive(r, "events", E().drop(columns=["value"])),
        error=("part-0.parquet", "missing column(s) value", "Rename"),
    ),
    Fault(
        "renamed-column",
        "events",
        lambda r: hive(r, "events", E().rename(columns={"event_time": "ts"}), "jsonl"),
        error=("part-0.jsonl", "missing column(s) event_time", "Found:", "ts"),
    ),
    Fault(
        "float-unit-ids",
        "events",
        lambda r: hive(r, "events", _float_ids(E())),
        error=("part-0.parquet", "column unit_id is DOUBLE"),
    ),
    Fault(
        "null-unit-id",
        "events",
        lambda r: hive(r, "events", _with(E(), slice(0, 4), unit_id=None)),
        rows_in=E_ROWS,
        reason="unit_id is missing",
        quarantined=4,
    ),
    Fault(
        "empty-event-name",
        "events",
        lambda r: hive(r, "events", _with(E(), slice(0, 3), event=" ")),
        rows_in=E_ROWS,
        reason="event is missing",
        quarantined=3,
    ),
    Fault(
        "invisible-event-name",
        "events",
        lambda r: hive(r, "events", _with(E(), slice(0, 3), event="\u200b\u00ad"), "jsonl"),
        rows_in=E_ROWS,
        reason="event is missing",
        quarantined=3,
    ),
    Fault(
        "whitespace-unit-id",
        "events",
        lambda r: hive(r, "events", _with(E(), slice(0, 2), unit_id="\t\u3000")),
        rows_in=E_ROWS,
        reason="unit_id is missing",
        quarantined=2,
    ),
    Fault(
        "string-timestamps",
        "events",
        lambda r: hive(r, "events", _with(E(), slice(0, 3), event_time="yesterday"), "csv"),
        rows_in=E_ROWS,
        reason="event_time is missing or not a timestamp",
        quarantined=3,
    ),
    Fault(
        "nan-values",
        "events",
        lambda r: hive(r, "events", _with(E(), slice(0, 3), value=float("nan"))),
        rows_in=E_ROWS,
        reason="value is missing, not a number, NaN or infinite",
        quarantined=3,
    ),
    Fault(
        "infinite-values",
        "events",
        lambda r: hive(r, "events", _with(E(), slice(0, 2), value=float("inf"))),
        rows_in=E_ROWS,
        reason="value is missing, not a number, NaN or infinite",
        quarantined=2,
    ),
    Fault(
        "non-numeric-values",
        "events",
        lambda r: hive(r, "events", _with(E(), slice(0, 3), value="12,5"), "csv"),
        rows_in=E_ROWS,
        reason="value is missing, not a number, NaN or infinite",
        quarantined=3,
    ),
    Fault(
        "huge-outlier-value",
        "events",
        lambda r: hive(r, "events", _with(E(), slice(0, 2), value=1e40)),
        rows_in=E_ROWS,
        reason="is beyond +/-1000000000000 (corrupt, or logged in the wrong unit)",
        quarantined=2,
    ),
    Fault(
        "events-in-the-future",
        "events",
        lambda r: hive(r, "events", _with(E(), slice(0, 3), event_time="2031-01-01T00:00:00Z")),
        rows_in=E_ROWS,
        reason=f"event_time 2031-01-01 is outside its date={DAY.isoformat()} folder",
        quarantined=3,
    ),
    Fault(
        "non-utc-offset-crossing-midnight",
        "events",
        lambda r: hive(
            r, "events", _with(E(), slice(0, 2), event_time=f"{NEXT_DAY}T01:00:00+00:00"), "csv"
        ),
        rows_in=E_ROWS,
        reason=f"event_time {NEXT_DAY} is outside its date={DAY.isoformat()} folder",
        quarantined=2,
    ),
    Fault(
        "duplicate-event-ids",
        "events",
        lambda r: hive(r, "events", _extra(_event_ids(E()), _event_ids(E())[:6])),
        rows_in=E_ROWS + 6,
        reason="(a retried log row): only its first row counts",
        quarantined=6,
    ),
    Fault(
        "csv-stray-header",
        "events",
        lambda r: _concatenated_csv(r, "events", E()),
        rows_in=E_ROWS + 1,
        reason="a repeated header line",
        quarantined=1,
    ),
    Fault(
        "truncated-parquet",
        "events",
        lambda r: _truncated(r, "events", E()),
        error=("part-0.parquet", "cannot be read as parquet"),
    ),
    Fault(
        "truncated-jsonl",
        "events",
        lambda r: _cut_jsonl(r, "events", E()),
        error=("part-0.jsonl", "cannot be read as json"),
    ),
    Fault(
        "mixed-encodings",
        "events",
        lambda r: _latin1_csv(r, "events", E(), "event"),
        error=("part-1.csv", "not UTF-8"),
    ),
    Fault(
        "csv-pipe-delimiter",
        "events",
        lambda r: _delimited(r, "events", E(), "|"),
        rows_in=E_ROWS,
    ),
]
