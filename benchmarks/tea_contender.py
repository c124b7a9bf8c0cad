"""The tea-tasting contender, run with tea-tasting's own virtualenv (benchmarks/run.py makes it):
``python benchmarks/tea_contender.py WORKLOAD_DIR``.

The straightforward way to get the four results with tea-tasting on DuckDB through Ibis: one
per-unit table in SQL (exposure-aware window sums, the pre-period watch time), then
``tea_tasting.Experiment`` for CTR (``RatioOfMeans``, delta method), watch time (``Mean`` with
the pre-period as CUPED covariate) and conversion (``Mean`` of a 0/1 column); p95 latency is
DuckDB's exact quantile per arm (tea-tasting's ``Quantile`` is a bootstrap over raw rows, which
would not finish at these sizes). Prints one JSON line like benchmarks/contenders.py.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

STARTED = time.perf_counter()

import ibis  # noqa: E402
import tea_tasting as tt  # noqa: E402

WINDOW = ("2026-10-01", "2026-10-14")
EFFECT_COLUMNS = ("effect_size", "effect_size_ci_lower", "effect_size_ci_upper")


def main() -> int:
    root = Path(sys.argv[1])
    events = [str(p) for p in sorted(root.glob("events/date=*/*.parquet")) if _day(p) <= WINDOW[1]]
    exposures = [
        str(p) for p in sorted(root.glob("exposures/date=*/*.parquet")) if _day(p) <= WINDOW[1]
    ]
    con = ibis.duckdb.connect()
    con.raw_sql(f"CREATE VIEW events AS SELECT * FROM read_parquet({events!r})")
    con.raw_sql(f"CREATE VIEW exposures AS SELECT * FROM read_parquet({exposures!r})")
    con.raw_sql(
        """
        CREATE TABLE units AS
        WITH first AS (
            SELECT unit_id, arg_min(variant, exposed_at) AS variant,
                   min(exposed_at)::DATE AS first_day
            FROM exposures GROUP BY unit_id
        )
        SELECT
            f.unit_id, f.variant,
            coalesce(sum(e.value) FILTER (WHERE e.event = 'impression'
                AND e.event_time::DATE >= f.first_day), 0) AS impressions,
            count(e.unit_id) FILTER (WHERE e.event = 'click'
                AND e.event_time::DATE >= f.first_day) AS clicks,
            coalesce(sum(e.value) FILTER (WHERE e.event = 'watch_seconds'
                AND e.event_time::DATE >= f.first_day), 0) AS watch,
            coalesce(sum(e.value) FILTER (WHERE e.event = 'watch_seconds'
                AND e.event_time::DATE < f.first_day
                AND e.event_time::DATE >= f.first_day - 7), 0) AS pre_watch,
            (count(e.unit_id) FILTER (WHERE e.event = 'purchase'
                AND e.event_time::DATE >= f.first_day) > 0)::INTEGER AS converted
        FROM first AS f
        LEFT JOIN events AS e ON e.unit_id = f.unit_id
        GROUP BY f.unit_id, f.variant
        """
    )
    experiment = tt.Experiment(
        ctr=tt.RatioOfMeans("clicks", "impressions"),
        watch_time=tt.Mean("watch", "pre_watch"),
        conversion=tt.Mean("converted"),
    )
    result = experiment.analyze(con.table("units"), control="control")
    outcome = {row["metric"]: [row[k] for k in EFFECT_COLUMNS] for row in result.to_dicts()}
    p95 = dict(
        con.raw_sql(
            """
            SELECT f.variant, quantile_cont(e.value, 0.95)
            FROM events AS e
            JOIN (SELECT unit_id, arg_min(variant, exposed_at) AS variant,
                         min(exposed_at)::DATE AS first_day
                  FROM exposures GROUP BY unit_id) AS f ON f.unit_id = e.unit_id
            WHERE e.event = 'latency_ms' AND e.event_time::DATE >= f.first_day
            GROUP BY f.variant
            """
        ).fetchall()
    )
    outcome["latency_p95"] = [p95["treatment"] - p95["control"], None, None]
    print(
        json.dumps(
            {
                "contender": "tea_tasting",
                "seconds": time.perf_counter() - STARTED,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
                "outcome": dict(sorted(outcome.items())),
            },
            default=float,
        )
    )
    return 0


def _day(path: Path) -> str:
    return path.parent.name.removeprefix("date=")


if __name__ == "__main__":
    sys.exit(main())
