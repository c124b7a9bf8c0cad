"""A huge but plausible outlier (issue 5): one user with 10^7 watch seconds among users with about
a minute. It is kept and analysed, never quarantined; it is reported per metric in
``metric_outliers``, by ``check_outliers`` and in the decision's reasons; with ``winsorize`` in the
metric catalog it is capped at the pooled quantile before the sufficient statistics."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest
import yaml

from assets.unit_metrics import check_outliers_result
from exp_dagster.cli import main
from exp_dagster.decision import outlier_sentences
from exp_dagster.home import PROJECT_ROOT
from exp_dagster.spec import (
    MetricCatalog,
    ResolvedExperiment,
    SpecError,
    load_metric_catalog,
    parse_experiment,
)
from exp_dagster.warehouse.queries import (
    build_event_facts,
    build_exposures,
    build_metric_statistics,
    build_unit_metrics,
    ensure_schema,
    read_outliers,
)
from tests.faults.corpus import (
    DAY,
    EXPERIMENT_ID,
    START,
    events,
    exposures,
    hive,
    spec_data,
    unit_ids,
    write,
    write_catalog,
)

OUTLIER = 1e7
OUTLIER_UNIT = "user-0007"


def catalog_data(**winsorize: float) -> dict[str, Any]:
    """The project's metric catalog, with ``winsorize`` set on the named metrics."""
    data = yaml.safe_load((PROJECT_ROOT / "catalog" / "metrics.yaml").read_text())
    for name, level in winsorize.items():
        data["metrics"][name]["winsorize"] = level
    return data


def resolved(**winsorize: float) -> ResolvedExperiment:
    catalog = MetricCatalog.model_validate(catalog_data(**winsorize))
    return parse_experiment(spec_data(), f"{EXPERIMENT_ID}.yaml", catalog)


def with_outlier(frame: pd.DataFrame, unit: str = OUTLIER_UNIT) -> pd.DataFrame:
    """``frame`` with ``unit``'s watch time set to 10^7 seconds (115 days in one day)."""
    changed = frame.copy()
    row = changed.index[(changed["unit_id"] == unit) & (changed["event"] == "watch_seconds")][0]
    changed.loc[row, "value"] = OUTLIER
    return changed


@pytest.fixture
def conn() -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    ensure_schema(connection)
    return connection


def analyse_day(
    conn: duckdb.DuckDBPyConnection, root: Path, experiment: ResolvedExperiment
) -> pd.DataFrame:
    """Run the corpus day with the planted outlier through metric_statistics; returns the events
    written, after checking that every event row is accounted for and none is quarantined."""
    build_exposures(conn, experiment, hive(root, "exposures", exposures()), DAY)
    logged = with_outlier(events())
    counts = build_event_facts(conn, hive(root, "events", logged), DAY, ["latency_ms"])
    assert counts.rows_in == len(logged) == counts.rows_validated + counts.rows_quarantined
    assert counts.rows_quarantined == 0  # a plausible outlier is data, not a fault
    build_unit_metrics(conn, experiment, DAY)
    build_metric_statistics(conn, experiment, DAY)
    return logged


def watch_time_values(conn: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    return conn.execute(
        "SELECT unit_id, variant, y FROM unit_metrics WHERE metric = 'watch_time' ORDER BY unit_id"
    ).fetchdf()


def overall_statistics(conn: duckdb.DuckDBPyConnection, metric: str) -> dict[str, tuple]:
    rows = conn.execute(
        "SELECT variant, n, sum_y, sum_y2 FROM metric_statistics "
        "WHERE metric = ? AND segment = 'all'",
        [metric],
    ).fetchall()
    return {variant: (n, sum_y, sum_y2) for variant, n, sum_y, sum_y2 in rows}


def test_a_planted_outlier_is_reported_not_quarantined(
    tmp_path: Path, conn: duckdb.DuckDBPyConnection
) -> None:
    experiment = resolved()
    analyse_day(conn, tmp_path, experiment)
    report = {(r["metric"], r["quantity"]): r for r in read_outliers(conn, EXPERIMENT_ID, DAY)}
    # Mean metrics report their value, ratio metrics both parts; proportions and quantiles none.
    assert set(report) == {("watch_time", "value"), ("ctr", "numerator"), ("ctr", "denominator")}
    watch = report[("watch_time", "value")]
    assert watch["units"] == 200 and watch["outlier_units"] == 1
    assert watch["top_values"] == [OUTLIER] and watch["top_units"] == [OUTLIER_UNIT]
    # The fence comes from the 11th-largest value (200 units), far below the outlier, far
    # above the clean values (exponential, mean 60 s).
    values = watch_time_values(conn)["y"].to_numpy()
    eleventh = np.sort(np.abs(values))[-11]
    assert watch["fence"] == pytest.approx(10 * eleventh)
    assert np.sort(values)[-2] < watch["fence"] < OUTLIER
    assert watch["cap"] is None and watch["capped_units"] is None
    assert report[("ctr", "numerator")]["outlier_units"] == 0
    # Not winsorised, the statistics hold the value as logged.
    statistics = overall_statistics(conn, "watch_time")
    assert sum(s[1] for s in statistics.values()) == pytest.approx(values.sum())

    check = check_outliers_result(list(report.values()))
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert "watch_time: 1 unit(s) beyond" in str(check.description)
    assert "winsorize: 0.999" in str(check.description)
    assert check.metadata["top_values"].value == {"watch_time": [OUTLIER]}

    (sentence,) = outlier_sentences(experiment, list(report.values()))
    assert sentence.startswith("Outliers in the primary metric watch_time: 1 unit(s) beyond")
    assert "10,000,000" in sentence and "'winsorize: 0.999'" in sentence


def test_winsorisation_caps_the_outlier_at_the_pooled_quantile(
    tmp_path: Path, conn: duckdb.DuckDBPyConnection
) -> None:
    experiment = resolved(watch_time=0.99)
    analyse_day(conn, tmp_path, experiment)
    values = watch_time_values(conn)
    # unit_metrics keeps the logged values; the cap applies on the way to the statistics.
    assert values["y"].max() == OUTLIER
    cap = float(np.quantile(values["y"], 0.99))  # linear interpolation, both arms pooled
    assert cap < 1000  # two units above it: the outlier and one clean unit
    capped = np.minimum(values["y"].to_numpy(), cap)
    statistics = overall_statistics(conn, "watch_time")
    for variant, (n, sum_y, sum_y2) in statistics.items():
        in_arm = capped[(values["variant"] == variant).to_numpy()]
        assert n == len(in_arm)
        assert sum_y == pytest.approx(in_arm.sum(), abs=1e-4)
        assert sum_y2 == pytest.approx((in_arm**2).sum(), rel=1e-9)
    # Segments see the same capped values.
    by_segment = conn.execute(
        "SELECT sum(sum_y) FROM metric_statistics WHERE metric = 'watch_time' "
        "AND segment = 'platform'"
    ).fetchone()
    assert by_segment is not None and by_segment[0] == pytest.approx(capped.sum(), abs=1e-3)

    (watch,) = [r for r in read_outliers(conn, EXPERIMENT_ID, DAY) if r["metric"] == "watch_time"]
    assert watch["outlier_units"] == 1 and watch["top_values"] == [OUTLIER]  # still reported
    assert watch["winsorize"] == 0.99 and watch["cap"] == pytest.approx(cap)
    assert watch["capped_units"] == int((values["y"] > cap).sum()) == 2
    check = check_outliers_result([watch])
    assert check.passed, check.description  # the cap tames it
    assert "capped at" in str(check.description)
    (sentence,) = outlier_sentences(experiment, [watch])
    assert "winsorised: every unit's value is capped at" in sentence
    assert "pooled 99th percentile" in sentence
    # The option is part of the spec version, and unset it changes no version.
    assert experiment.version != resolved().version
    assert (
        resolved().version
        == parse_experiment(
            spec_data(),
            f"{EXPERIMENT_ID}.yaml",
            load_metric_catalog(PROJECT_ROOT / "catalog" / "metrics.yaml"),
        ).version
    )


def test_a_cap_above_the_fence_is_called_out(
    tmp_path: Path, conn: duckdb.DuckDBPyConnection
) -> None:
    # 200 units: the 99.9th percentile interpolates up to the outlier itself.
    experiment = resolved(watch_time=0.999)
    analyse_day(conn, tmp_path, experiment)
    (watch,) = [r for r in read_outliers(conn, EXPERIMENT_ID, DAY) if r["metric"] == "watch_time"]
    assert watch["cap"] > watch["fence"]
    assert not check_outliers_result([watch]).passed
    (sentence,) = outlier_sentences(experiment, [watch])
    assert "lies above the fence and does not tame them" in sentence


def test_rerunning_the_statistics_gives_the_same_outlier_report(
    tmp_path: Path, conn: duckdb.DuckDBPyConnection
) -> None:
    experiment = resolved(watch_time=0.99)
    analyse_day(conn, tmp_path, experiment)
    tables = ("metric_statistics", "metric_outliers")
    first = {t: conn.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in tables}
    build_metric_statistics(conn, experiment, DAY)
    assert {t: conn.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in tables} == first


@pytest.mark.parametrize("metric", ["ctr", "conversion", "latency_p95"])
def test_winsorize_on_a_metric_that_is_not_a_mean_is_rejected(tmp_path: Path, metric: str) -> None:
    path = tmp_path / "metrics.yaml"
    path.write_text(yaml.safe_dump(catalog_data(**{metric: 0.999})))
    with pytest.raises(SpecError) as error:
        load_metric_catalog(path)
    message = str(error.value)
    assert str(path) in message and f"field 'metrics.{metric}'" in message
    assert "'winsorize' applies to mean metrics only" in message and "remove it" in message


def test_winsorize_level_out_of_range_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "metrics.yaml"
    path.write_text(yaml.safe_dump(catalog_data(watch_time=99.9)))
    with pytest.raises(SpecError, match=r"field 'metrics.watch_time.winsorize': Input should be"):
        load_metric_catalog(path)


def test_analyze_reports_the_outlier_and_records_the_cap(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """End to end through the assets: the decision names the outlier, results say how the
    metric was capped, and every event row is accounted for."""
    days = [START + dt.timedelta(days=i) for i in range(2)]
    population = unit_ids(400)
    written = 0
    for day in days:
        write(exposures(day, population), tmp_path / "exposures" / f"date={day}" / "part-0.csv")
        logged = events(day, population)
        if day == days[-1]:
            logged = with_outlier(logged)
        write(logged, tmp_path / "events" / f"date={day}" / "part-0.parquet")
        written += len(logged)
    spec = write_catalog(tmp_path / "catalog", end=days[-1].isoformat())
    (tmp_path / "catalog" / "metrics.yaml").write_text(
        yaml.safe_dump(catalog_data(watch_time=0.99))
    )
    home = tmp_path / "home"
    code = main(
        [
            "analyze",
            "--experiment",
            str(spec),
            "--exposures",
            str(tmp_path / "exposures"),
            "--events",
            str(tmp_path / "events"),
            "--json",
            str(tmp_path / "out.json"),
            "--home",
            str(home),
        ]
    )
    assert code == 0 and "Traceback" not in capsys.readouterr().err
    document = json.loads((tmp_path / "out.json").read_text())
    outliers = [r for r in document["reasons"] if r.startswith("Outliers in the primary metric")]
    assert len(outliers) == 1 and "winsorised" in outliers[0], document["reasons"]
    (watch,) = [r for r in document["results"] if r["metric"] == "watch_time"]
    assert "winsorised: each unit's value capped at the 99th percentile" in watch["method"]
    others = [r["method"] for r in document["results"] if r["metric"] != "watch_time"]
    assert others and not any("winsorised" in m for m in others)
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        ((facts, quarantined),) = conn.execute(
            "SELECT (SELECT sum(n) FROM event_facts), (SELECT count(*) FROM event_quarantine)"
        ).fetchall()
        report = conn.execute(
            "SELECT as_of_date, outlier_units, capped_units FROM metric_outliers "
            "WHERE metric = 'watch_time' ORDER BY as_of_date"
        ).fetchall()
        versions = conn.execute("SELECT DISTINCT spec_version FROM metric_outliers").fetchall()
    assert facts + quarantined == written and quarantined == 0
    assert [(d, n) for d, n, _ in report] == [(days[0], 0), (days[1], 1)]
    assert all(capped is not None and capped >= 1 for _, _, capped in report)
    assert versions == [(document["spec_version"],)]
