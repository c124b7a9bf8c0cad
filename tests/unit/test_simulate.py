"""Tests of the log simulator: contract, determinism, messiness, and agreement with its truth."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from exp_dagster.assignment import assign_variant
from exp_dagster.simulate import (
    EVENTS,
    Format,
    SimulationConfig,
    SimulationTruth,
    load_truth,
    simulate,
)

SMALL = SimulationConfig(n_units=3_000, days=5, pre_days=3, chunk_units=1_000, seed=11)
# Big enough for effects to be measured to a few percent, small enough to run in seconds.
BIG = SimulationConfig(n_units=30_000, days=7, pre_days=7, seed=3)

READERS: dict[str, str] = {
    "parquet": "read_parquet($files, hive_partitioning = false)",
    "csv": "read_csv_auto($files, hive_partitioning = false)",
    "jsonl": "read_json_auto($files, hive_partitioning = false)",
}
EXPOSURE_TYPES: dict[str, str] = {
    "experiment_id": "VARCHAR",
    "unit_id": "VARCHAR",
    "variant": "VARCHAR",
    "exposed_at": "TIMESTAMP WITH TIME ZONE",
    "platform": "VARCHAR",
    "country": "VARCHAR",
    "is_new_user": "BOOLEAN",
}
EVENT_TYPES: dict[str, str] = {
    "unit_id": "VARCHAR",
    "event_time": "TIMESTAMP WITH TIME ZONE",
    "event": "VARCHAR",
    "value": "DOUBLE",
}

# Per exposed unit: its variant and platform, its metrics from its first exposure day through the
# window's end, and its watch time in the pre_days before its first exposure day.
UNIT_METRICS_SQL = """
WITH units AS (
    SELECT
        unit_id,
        min(variant) AS variant,
        any_value(platform) AS platform,
        min(exposed_at)::DATE AS first_day
    FROM read_parquet($exposures)
    GROUP BY unit_id
),
events AS (
    SELECT unit_id, event_time::DATE AS event_date, event, value FROM read_parquet($events)
)
SELECT
    u.variant,
    u.platform,
    count(*) FILTER (e.event = 'impression' AND e.event_date BETWEEN u.first_day AND $end),
    count(*) FILTER (e.event = 'click' AND e.event_date BETWEEN u.first_day AND $end),
    coalesce(sum(e.value) FILTER (
        e.event = 'watch_seconds' AND e.event_date BETWEEN u.first_day AND $end
    ), 0),
    count(*) FILTER (e.event = 'purchase' AND e.event_date BETWEEN u.first_day AND $end),
    coalesce(sum(e.value) FILTER (
        e.event = 'watch_seconds'
        AND e.event_date BETWEEN u.first_day - $pre_days::INTEGER AND u.first_day - 1
    ), 0)
FROM units AS u
LEFT JOIN events AS e USING (unit_id)
GROUP BY u.unit_id, u.variant, u.platform
ORDER BY u.unit_id
"""


def _connect() -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    return connection


def _glob(out: Path, kind: str, fmt: str = "parquet") -> str:
    return str(out / kind / "*" / f"*.{fmt}")


def _file_bytes(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SimulationTruth]:
    out = tmp_path_factory.mktemp("small")
    return out, simulate(out, SMALL)


@pytest.fixture(scope="module")
def big_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SimulationTruth]:
    out = tmp_path_factory.mktemp("big")
    return out, simulate(out, BIG)


@pytest.fixture(scope="module")
def big_unit_metrics(big_run: tuple[Path, SimulationTruth]) -> dict[str, np.ndarray]:
    out, truth = big_run
    return _unit_metrics(out, truth, BIG.pre_days)


def test_same_config_gives_identical_files(
    small_run: tuple[Path, SimulationTruth], tmp_path: Path
) -> None:
    out, truth = small_run
    again = simulate(tmp_path, SMALL)
    assert again == truth
    assert _file_bytes(tmp_path) == _file_bytes(out)


def test_another_seed_gives_other_logs(
    small_run: tuple[Path, SimulationTruth], tmp_path: Path
) -> None:
    out, _ = small_run
    simulate(tmp_path, dataclasses.replace(SMALL, seed=SMALL.seed + 1))
    name = "events/date=2026-10-01/part-00000.parquet"
    assert (tmp_path / name).read_bytes() != (out / name).read_bytes()


def test_rerun_replaces_previous_output(tmp_path: Path) -> None:
    simulate(tmp_path, dataclasses.replace(SMALL, chunk_units=500))
    simulate(tmp_path, SMALL)
    parts = {p.name for p in (tmp_path / "events" / "date=2026-10-01").iterdir()}
    assert parts == {
        "part-00000.parquet",
        "part-00001.parquet",
        "part-00002.parquet",
        "part-00003.parquet",
    }


def test_layout_and_parquet_schema(small_run: tuple[Path, SimulationTruth]) -> None:
    out, truth = small_run
    window = [SMALL.start + dt.timedelta(days=d) for d in range(SMALL.days)]
    pre = [SMALL.start - dt.timedelta(days=d) for d in range(SMALL.pre_days, 0, -1)]
    late = [truth.end + dt.timedelta(days=1)]
    assert truth.start == SMALL.start and truth.end == window[-1]

    def folders(kind: str) -> list[str]:
        return sorted(p.name for p in (out / kind).iterdir())

    assert folders("exposures") == [f"date={d.isoformat()}" for d in window]
    assert folders("events") == [f"date={d.isoformat()}" for d in pre + window + late]
    # 3 150 units in chunks of 1 000: four part files per day.
    for folder in (out / "events").iterdir():
        assert sorted(p.name for p in folder.iterdir()) == [
            f"part-0000{i}.parquet" for i in range(4)
        ]

    exposures_schema = pq.read_schema(out / "exposures" / "date=2026-10-01" / "part-00000.parquet")
    assert exposures_schema.field("exposed_at").type == pa.timestamp("us", tz="UTC")
    events_schema = pq.read_schema(out / "events" / "date=2026-10-01" / "part-00000.parquet")
    assert events_schema.field("event_time").type == pa.timestamp("us", tz="UTC")
    assert events_schema.field("value").type == pa.float64()

    connection = _connect()
    for kind, expected in (("exposures", EXPOSURE_TYPES), ("events", EVENT_TYPES)):
        described = connection.execute(
            f"DESCRIBE SELECT * FROM {READERS['parquet']}", {"files": _glob(out, kind)}
        ).fetchall()
        assert {row[0]: row[1] for row in described} == expected
    # Every row lies in the folder of its timestamp's UTC date.
    for kind, column in (("exposures", "exposed_at"), ("events", "event_time")):
        misplaced = connection.execute(
            f"SELECT count(*) FROM read_parquet($files, hive_partitioning = true) "
            f"WHERE {column}::DATE <> date::DATE",
            {"files": _glob(out, kind)},
        ).fetchone()
        assert misplaced == (0,)


def test_counts_match_the_files(small_run: tuple[Path, SimulationTruth]) -> None:
    out, truth = small_run
    connection = _connect()
    params = {"exposures": _glob(out, "exposures"), "events": _glob(out, "events")}
    exposure_rows, distinct_rows = connection.execute(
        "SELECT count(*), (SELECT count(*) FROM (SELECT DISTINCT * FROM read_parquet($exposures))) "
        "FROM read_parquet($exposures)",
        {"exposures": params["exposures"]},
    ).fetchone()
    assert exposure_rows == truth.counts["exposures"]
    assert exposure_rows - distinct_rows == truth.counts["duplicate_exposures"] > 0
    by_event = dict(
        connection.execute(
            "SELECT event, count(*) FROM read_parquet($events) GROUP BY event",
            {"events": params["events"]},
        ).fetchall()
    )
    assert set(by_event) == set(EVENTS)
    assert sum(by_event.values()) == truth.counts["events"]
    for event in EVENTS:
        assert by_event[event] == truth.counts[f"events_{event}"]
    late = connection.execute(
        "SELECT count(*) FROM read_parquet($events) WHERE event_time::DATE > $end",
        {"events": params["events"], "end": truth.end},
    ).fetchone()
    assert late == (truth.counts["late_events"],) and late[0] > 0
    # Active units without exposures: exactly the ineligible units active during the window.
    never_exposed = connection.execute(
        "SELECT count(DISTINCT unit_id) FROM read_parquet($events) "
        "WHERE event_time::DATE BETWEEN $start AND $end "
        "AND unit_id NOT IN (SELECT unit_id FROM read_parquet($exposures))",
        {**params, "start": truth.start, "end": truth.end},
    ).fetchone()
    assert never_exposed == (truth.counts["never_exposed_units"],) and never_exposed[0] > 0
    clicks_over_impressions = connection.execute(
        "SELECT count(*) FROM (SELECT unit_id, event_time::DATE FROM read_parquet($events) "
        "GROUP BY ALL HAVING count(*) FILTER (event = 'click') "
        "> count(*) FILTER (event = 'impression'))",
        {"events": params["events"]},
    ).fetchone()
    assert clicks_over_impressions == (0,)


def test_exposures_follow_the_assignment_and_precede_events(
    small_run: tuple[Path, SimulationTruth],
) -> None:
    out, truth = small_run
    connection = _connect()
    rows = connection.execute(
        "SELECT DISTINCT unit_id, variant FROM read_parquet($files)",
        {"files": _glob(out, "exposures")},
    ).fetchall()
    weights = dict(SMALL.weights)
    assert all(variant == assign_variant(SMALL.salt, unit, weights) for unit, variant in rows)
    assert len(rows) == truth.counts["exposed_units"]
    first_days = connection.execute(
        "SELECT min(first_day), max(first_day) FROM (SELECT min(exposed_at)::DATE AS first_day "
        "FROM read_parquet($files) GROUP BY unit_id)",
        {"files": _glob(out, "exposures")},
    ).fetchone()
    assert first_days is not None and truth.start <= first_days[0] <= first_days[1] <= truth.end
    # On every exposure day, each of the unit's events comes after that day's exposure.
    early = connection.execute(
        "SELECT count(*) FROM read_parquet($events) AS e "
        "JOIN (SELECT unit_id, exposed_at FROM read_parquet($exposures)) AS x "
        "ON x.unit_id = e.unit_id AND x.exposed_at::DATE = e.event_time::DATE "
        "WHERE e.event_time <= x.exposed_at",
        {"events": _glob(out, "events"), "exposures": _glob(out, "exposures")},
    ).fetchone()
    assert early == (0,)
    # New users have no history before the window.
    new_user_history = connection.execute(
        "SELECT count(*) FROM read_parquet($events) WHERE event_time::DATE < $start "
        "AND unit_id IN (SELECT unit_id FROM read_parquet($exposures) WHERE is_new_user)",
        {
            "events": _glob(out, "events"),
            "exposures": _glob(out, "exposures"),
            "start": truth.start,
        },
    ).fetchone()
    assert new_user_history == (0,)


def test_clean_run_has_no_faults(tmp_path: Path) -> None:
    truth = simulate(tmp_path, dataclasses.replace(SMALL, n_units=1_000, messy=False))
    assert truth.counts["duplicate_exposures"] == 0
    assert truth.counts["never_exposed_units"] == 0
    assert truth.counts["late_events"] == 0
    last = max(p.name for p in (tmp_path / "events").iterdir())
    assert last == f"date={truth.end.isoformat()}"


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_text_formats_hold_the_same_rows(
    fmt: Format, small_run: tuple[Path, SimulationTruth], tmp_path: Path
) -> None:
    parquet_out, parquet_truth = small_run
    truth = simulate(tmp_path, dataclasses.replace(SMALL, fmt=fmt))
    assert truth == parquet_truth
    assert {p.suffix for p in tmp_path.rglob("part-*")} == {f".{fmt}"}
    first_line = next((tmp_path / "exposures").rglob(f"*.{fmt}")).read_text().splitlines()[1]
    assert "Z" in first_line
    connection = _connect()
    reader = READERS[fmt]
    for kind, expected in (("exposures", EXPOSURE_TYPES), ("events", EVENT_TYPES)):
        text_files = {"files": _glob(tmp_path, kind, fmt)}
        described = connection.execute(f"DESCRIBE SELECT * FROM {reader}", text_files).fetchall()
        assert {row[0]: row[1] for row in described} == expected
        connection.execute(
            f"CREATE OR REPLACE TEMP TABLE text_rows AS SELECT * FROM {reader}", text_files
        )
        connection.execute(
            f"CREATE OR REPLACE TEMP TABLE parquet_rows AS SELECT * FROM {READERS['parquet']}",
            {"files": _glob(parquet_out, kind)},
        )
        counts = connection.execute(
            "SELECT (SELECT count(*) FROM text_rows), (SELECT count(*) FROM parquet_rows), "
            "(SELECT count(*) FROM (SELECT * FROM text_rows EXCEPT ALL SELECT * FROM parquet_rows))"
        ).fetchone()
        assert counts is not None and counts[0] == counts[1] > 0 and counts[2] == 0


def test_truth_round_trips(small_run: tuple[Path, SimulationTruth]) -> None:
    out, truth = small_run
    assert load_truth(out / "truth.json") == truth
    assert load_truth(out) == truth
    assert SimulationTruth.from_dict(truth.to_dict()) == truth


def test_truth_effects_follow_the_config(small_run: tuple[Path, SimulationTruth]) -> None:
    _, truth = small_run
    effects = SMALL.effects
    lifts = dict(effects.ctr_by_platform)
    for platform, lift in lifts.items():
        assert truth.segment_relative_effects["ctr"][f"platform={platform}"] == pytest.approx(lift)
    assert min(lifts.values()) < truth.relative_effects["ctr"] < max(lifts.values())
    assert truth.relative_effects["watch_time"] == effects.watch_time
    assert truth.relative_effects["conversion"] == effects.conversion
    assert truth.relative_effects["latency_p95"] == effects.latency
    assert truth.relative_effects["revenue"] == pytest.approx(effects.conversion)
    assert set(truth.segment_relative_effects["watch_time"].values()) == {effects.watch_time}
    assert "is_new_user=true" in truth.segment_relative_effects["ctr"]


def test_progress_reports_every_day_and_chunk(tmp_path: Path) -> None:
    messages: list[str] = []
    config = dataclasses.replace(SMALL, n_units=400, chunk_units=250)
    simulate(tmp_path, config, progress=messages.append)
    assert len(messages) == 2 * (config.pre_days + config.days + 1)
    assert messages[0].startswith((config.start - dt.timedelta(days=3)).isoformat())


@pytest.mark.parametrize(
    "change",
    [
        {"weights": (("control", 0.5), ("treatment", 0.6))},
        {"weights": (("control", 1.0),)},
        {"days": 0},
        {"fmt": "xlsx"},
    ],
)
def test_invalid_config_is_refused(change: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="Invalid SimulationConfig"):
        dataclasses.replace(SMALL, **change)  # type: ignore[arg-type]


def _unit_metrics(out: Path, truth: SimulationTruth, pre_days: int) -> dict[str, np.ndarray]:
    rows = (
        _connect()
        .execute(
            UNIT_METRICS_SQL,
            {
                "exposures": _glob(out, "exposures"),
                "events": _glob(out, "events"),
                "end": truth.end,
                "pre_days": pre_days,
            },
        )
        .fetchall()
    )
    columns = list(zip(*rows, strict=True))
    names = ["impressions", "clicks", "watch", "purchases", "pre_watch"]
    metrics = {
        name: np.array(col, dtype=float) for name, col in zip(names, columns[2:], strict=True)
    }
    metrics["treatment"] = np.array(columns[0]) == "treatment"
    metrics["platform"] = np.array(columns[1])
    return metrics


def _relative_lift(y: np.ndarray, x: np.ndarray, treatment: np.ndarray) -> tuple[float, float]:
    """Relative lift of a ratio of means, treatment over control, and its delta-method SE."""
    ratios: list[float] = []
    variances: list[float] = []
    for arm in (treatment, ~treatment):
        mean_y, mean_x = y[arm].mean(), x[arm].mean()
        ratio = mean_y / mean_x
        covariance = np.cov(y[arm], x[arm])
        ratios.append(ratio)
        variances.append(
            (covariance[0, 0] - 2 * ratio * covariance[0, 1] + ratio**2 * covariance[1, 1])
            / mean_x**2
            / arm.sum()
        )
    (r_t, r_c), (v_t, v_c) = ratios, variances
    return r_t / r_c - 1, float(np.sqrt(v_t / r_c**2 + r_t**2 * v_c / r_c**4))


def test_sampled_effects_agree_with_the_truth(
    big_run: tuple[Path, SimulationTruth], big_unit_metrics: dict[str, np.ndarray]
) -> None:
    _, truth = big_run
    m = big_unit_metrics
    ones = np.ones_like(m["watch"])
    treatment = m["treatment"]
    checks = {
        "ctr": (m["clicks"], m["impressions"]),
        "watch_time": (m["watch"], ones),
        "conversion": ((m["purchases"] > 0).astype(float), ones),
        "impressions": (m["impressions"], ones),
    }
    for metric, (y, x) in checks.items():
        lift, se = _relative_lift(y, x, treatment)
        assert abs(lift - truth.relative_effects[metric]) < 4 * se, (metric, lift, se)
    _, ctr_se = _relative_lift(m["clicks"], m["impressions"], treatment)
    assert ctr_se < 0.02
    for platform in ("ios", "web"):
        mask = m["platform"] == platform
        lift, se = _relative_lift(m["clicks"][mask], m["impressions"][mask], treatment[mask])
        expected = truth.segment_relative_effects["ctr"][f"platform={platform}"]
        assert abs(lift - expected) < 4 * se, (platform, lift, se)
    conversion = (m["purchases"][~treatment] > 0).mean()
    assert 0.04 < conversion < 0.15


def test_latency_quantiles_scale_by_the_effect(big_run: tuple[Path, SimulationTruth]) -> None:
    out, truth = big_run
    p95 = dict(
        _connect()
        .execute(
            "SELECT x.variant, quantile_cont(e.value, 0.95) FROM read_parquet($events) AS e "
            "JOIN (SELECT unit_id, min(variant) AS variant, min(exposed_at)::DATE AS first_day "
            "      FROM read_parquet($exposures) GROUP BY unit_id) AS x USING (unit_id) "
            "WHERE e.event = 'latency_ms' AND e.event_time::DATE BETWEEN x.first_day AND $end "
            "GROUP BY x.variant",
            {
                "events": _glob(out, "events"),
                "exposures": _glob(out, "exposures"),
                "end": truth.end,
            },
        )
        .fetchall()
    )
    ratio = p95["treatment"] / p95["control"]
    assert ratio == pytest.approx(1 + truth.relative_effects["latency_p95"], abs=0.015)


def test_pre_period_predicts_watch_time(big_unit_metrics: dict[str, np.ndarray]) -> None:
    m = big_unit_metrics
    control = ~m["treatment"]
    rho_squared = np.corrcoef(m["watch"][control], m["pre_watch"][control])[0, 1] ** 2
    assert 0.2 < rho_squared < 0.7


def test_an_experiment_without_a_pre_period_simulates(tmp_path: Path) -> None:
    truth = simulate(tmp_path, SimulationConfig(n_units=300, days=2, pre_days=0, seed=3))
    assert truth.counts["pre_period_events"] == 0
    assert truth.counts["exposed_units"] > 0 and truth.counts["events"] > 0


def test_page_impression_rows_carry_the_same_impressions(
    tmp_path: Path, small_run: tuple[Path, SimulationTruth]
) -> None:
    """``impression_rows="page"`` (the benchmarks' ~40 rows per unit) logs one row per page whose
    value is the items shown: per unit and day the impressions add up to the per-item rows, and
    every other event is the same row for row."""
    item_dir, item_truth = small_run
    page_dir = tmp_path / "page"
    page_truth = simulate(page_dir, dataclasses.replace(SMALL, impression_rows="page"))
    assert page_truth.relative_effects == item_truth.relative_effects
    per_unit_day = """
        SELECT unit_id, event_time::DATE AS day, event, count(*) AS rows, sum(value) AS total
        FROM read_parquet($files) GROUP BY ALL ORDER BY ALL
    """
    with duckdb.connect() as conn:
        item, page = (
            conn.execute(
                per_unit_day, {"files": str(root / "events" / "*" / "*.parquet")}
            ).fetchall()
            for root in (item_dir, page_dir)
        )
    assert len(item) == len(page) > 0
    for (unit, day, event, rows, total), other in zip(item, page, strict=True):
        assert other[:3] == (unit, day, event)
        if event == "impression":
            assert other[3] < rows and other[4] == pytest.approx(total, rel=1e-12)
        else:
            assert other[3:] == (rows, total)
    item_rows = sum(r[3] for r in item)
    page_rows = sum(r[3] for r in page)
    assert page_rows < item_rows / 3
