"""Seeded model-evaluation logs with known truth: ranking, prediction and interleaving logs.

:func:`exp_dagster.simulate.simulate` calls :func:`simulate_model_logs` after the exposure and
event logs, with its own random streams, so the A/B logs and their truth are the same whether or
not these logs are written. Three logs land beside ``exposures/`` and ``events/``, in hive
``date=YYYY-MM-DD`` folders (see docs/input.md):

```
<out>/ranking/date=…/part-00000.parquet       one row per (request, model, shown item)
<out>/predictions/date=…/part-00000.parquet   one row per (unit, model)
<out>/interleaving/date=…/part-00000.parquet  one row per (request, shown item)
```

The generating process of a ranking request (``ITEMS_PER_REQUEST`` candidate items):

- each item has a latent relevance ``z ~ N(0, 1)`` and an attractiveness
  ``a = sigmoid(ATTRACTIVENESS_INTERCEPT + ATTRACTIVENESS_SLOPE z)``;
- the control (production) ranker scores ``z + N(0, CONTROL_NOISE²)``, every other variant's
  ranker ``z + N(0, CANDIDATE_NOISE²)``: the candidate ranks better by construction;
- the production (logging) policy serves the request: the first slot is drawn by a softmax of the
  control scores at temperature ``EXPLORATION_TEMPERATURE`` (exploration), the other items follow
  in the control ranker's order, so every shown item has a known marginal propensity of its
  position (logged in ``propensity``);
- position ``k`` is examined with probability ``k ** -EXAMINATION_DECAY``; an examined item is
  clicked with probability ``a``; ``label`` is 0 (no click), 1 (click) or 2 (click with a long
  engagement, probability ``a`` again);
- every candidate ranker scores the same request in shadow mode: its rows have its own order in
  ``position``, its ``score``, no propensity, and the item's logged label.

Prediction logs: each unit's true click probability is ``sigmoid(-1.4 + 1.2 x)``, ``x ~ N(0, 1)``;
the control model predicts ``sigmoid(-1.4 + 1.2 (x + N(0, 0.8²)))`` and every other model
``sigmoid(-1.4 + 1.2 (x + N(0, 0.4²)) + PREDICTION_OFFSET)``: better at ranking (AUC), but
over-confident by a known calibration error. ``label ~ Bernoulli(true probability)``. Each
prediction row carries two numeric features of its unit, drawn from their own random stream (so
the scores and labels do not depend on them): ``feature_activity ~ N(0, 1)`` on every day, and
``feature_session_minutes = exp(FEATURE_LOG_MEAN + FEATURE_LOG_SD (e + s))``, ``e ~ N(0, 1)``,
with ``s = 0`` on pre-period days and ``s = FEATURE_SHIFT`` on window days: a planted shift (as
from a logging change) that drift detection must flag on the feature and not on the scores.

Interleaving logs: the control and the first candidate ranker's orders of a request are merged
by team draft (Radlinski et al. 2008); clicks follow the examination model above on the merged list.

Truths are population values of the generating process, computed by Monte Carlo on
``TRUTH_DRAWS`` fresh draws (not on the logged sample), so their error is far below the logs'
intervals: the NDCG@10 difference between each candidate and the control (exponential gain, on
requests with a positive label), the candidate's click rate at the first slot (the off-policy
target), each model's expected calibration error (10 uniform bins, on the true probabilities),
calibration-in-the-large and AUC, and the interleaving preference. The features' population
PSI (10 quantile bins of the pre-period distribution) is in closed form: with pre-period decile
edges ``z_i`` of the standard normal, the window's bin shares are
``Phi(z_i - s) - Phi(z_(i-1) - s)``.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from exp_dagster.assignment import bucket_upper_bounds, hash_bucket

LOG_KINDS: tuple[str, ...] = ("ranking", "predictions", "interleaving")

ITEMS_PER_REQUEST = 10
NDCG_K = 10
ATTRACTIVENESS_INTERCEPT = -1.2
ATTRACTIVENESS_SLOPE = 1.5
CONTROL_NOISE = 1.2
CANDIDATE_NOISE = 0.4
EXPLORATION_TEMPERATURE = 1.5
EXAMINATION_DECAY = 0.3
PREDICTION_OFFSET = 0.5
CALIBRATION_BINS = 10
FEATURE_LOG_MEAN = 2.5
FEATURE_LOG_SD = 0.6
FEATURE_SHIFT = 0.6  # in standard deviations of log session minutes, window days only
PSI_BINS = 10
TRUTH_DRAWS = 200_000
_SEED_KEY = 9  # spawn keys (9, …): disjoint from the A/B simulator's streams
_US_PER_DAY = 86_400 * 1_000_000


@dataclass(frozen=True)
class ModelLogSizes:
    """How many rows of each model log to write per day.

    Attributes:
        ranking_requests: logged requests per window day (each with every model's ranking).
        predictions: scored units per day, pre-period days included (the drift reference).
        interleaved_requests: team-draft interleaved requests per window day.
    """

    ranking_requests: int = 1000
    predictions: int = 2000
    interleaved_requests: int = 400


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _examination(positions: np.ndarray) -> np.ndarray:
    return positions.astype(float) ** -EXAMINATION_DECAY


@dataclass
class _Requests:
    """``n`` ranking requests of ``ITEMS_PER_REQUEST`` items (arrays ``n × items``)."""

    attractiveness: np.ndarray
    control_score: np.ndarray
    candidate_score: np.ndarray  # every candidate variant ranks by these scores


def _draw_requests(rng: np.random.Generator, n: int) -> _Requests:
    z = rng.standard_normal((n, ITEMS_PER_REQUEST))
    return _Requests(
        attractiveness=_sigmoid(ATTRACTIVENESS_INTERCEPT + ATTRACTIVENESS_SLOPE * z),
        control_score=z + CONTROL_NOISE * rng.standard_normal(z.shape),
        candidate_score=z + CANDIDATE_NOISE * rng.standard_normal(z.shape),
    )


def _descending(scores: np.ndarray) -> np.ndarray:
    """Item indices per request in decreasing score order."""
    return np.argsort(-scores, axis=1, kind="stable")


def _logging_policy(
    rng: np.random.Generator, control_score: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The served order (item indices) and each shown item's marginal propensity of its position.

    The first slot is a softmax draw; the rest follow the control order. The item of control rank
    ``r`` (1-based) is at position ``r`` when the drawn item ranks above it, at ``r + 1`` when
    below it, and at 1 when drawn: each marginal is a sum of softmax probabilities.
    """
    n, m = control_score.shape
    order = _descending(control_score)
    logits = np.take_along_axis(control_score, order, axis=1) / EXPLORATION_TEMPERATURE
    softmax = np.exp(logits - logits.max(axis=1, keepdims=True))
    softmax /= softmax.sum(axis=1, keepdims=True)  # by control rank
    cumulative = np.cumsum(softmax, axis=1)
    drawn = (rng.random((n, 1)) > cumulative).sum(axis=1).clip(max=m - 1)  # control rank, 0-based
    rows = np.arange(n)[:, None]
    ranks = np.arange(m)[None, :]
    first = order[np.arange(n), drawn][:, None]
    rest = np.where(ranks < drawn[:, None], ranks, ranks + 1)[:, : m - 1]
    served = np.hstack([first, order[rows, rest]])
    # Propensity of the item served at each position, by the item's control rank.
    served_rank = np.argsort(order, axis=1)[rows, served]
    above = np.hstack([np.zeros((n, 1)), cumulative[:, :-1]])  # P(drawn ranks above r)
    below = 1.0 - cumulative  # P(drawn ranks below r)
    position = np.arange(1, m + 1)[None, :]
    propensity = np.where(
        position == 1,
        softmax[rows, served_rank],
        np.where(position == served_rank + 1, above[rows, served_rank], below[rows, served_rank]),
    )
    return served, propensity


def _clicks_and_labels(
    rng: np.random.Generator, attractiveness_shown: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Clicks and graded labels (0, 1, 2) of items shown in this order."""
    positions = np.arange(1, attractiveness_shown.shape[1] + 1)[None, :]
    probability = _examination(positions) * attractiveness_shown
    clicks = rng.random(attractiveness_shown.shape) < probability
    engaged = rng.random(attractiveness_shown.shape) < attractiveness_shown
    return clicks.astype(np.int8), (clicks * (1 + engaged)).astype(np.int8)


def _ndcg(labels_in_order: np.ndarray, k: int) -> np.ndarray:
    """NDCG@k with exponential gain; nan without a positive label (the library's convention)."""
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    gains = np.exp2(labels_in_order[:, :k].astype(float)) - 1.0
    ideal = np.exp2(-np.sort(-labels_in_order, axis=1)[:, :k].astype(float)) - 1.0
    best = ideal @ discounts
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(best > 0, (gains @ discounts) / best, np.nan)


def _team_draft(
    rng: np.random.Generator, baseline_order: np.ndarray, candidate_order: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Team-draft interleaving of two orders (Radlinski et al. 2008): shown items and teams.

    Returns the merged item indices and the team of each (0 baseline, 1 candidate). The team with
    fewer picks picks next (a coin decides ties); it takes its best item not shown yet.
    """
    n, m = baseline_order.shape
    rows = np.arange(n)
    used = np.zeros((n, m), dtype=bool)
    picks = np.zeros((n, 2), dtype=np.int64)
    merged = np.empty((n, m), dtype=np.int64)
    teams = np.empty((n, m), dtype=np.int8)
    for slot in range(m):
        coin = rng.random(n) < 0.5
        candidate_turn = (picks[:, 1] < picks[:, 0]) | ((picks[:, 1] == picks[:, 0]) & coin)
        order = np.where(candidate_turn[:, None], candidate_order, baseline_order)
        available = ~used[rows[:, None], order]
        item = order[rows, available.argmax(axis=1)]
        merged[:, slot] = item
        teams[:, slot] = candidate_turn
        used[rows, item] = True
        picks[rows, candidate_turn.astype(np.int64)] += 1
    return merged, teams


def _interleaving_outcome(teams: np.ndarray, clicks: np.ndarray) -> np.ndarray:
    """1 candidate win, 0 loss, 0.5 tie per clicked request (nan without clicks)."""
    candidate = (clicks * (teams == 1)).sum(axis=1)
    baseline = (clicks * (teams == 0)).sum(axis=1)
    outcome = np.where(candidate > baseline, 1.0, np.where(candidate < baseline, 0.0, 0.5))
    return np.where(candidate + baseline > 0, outcome, np.nan)


def _predictions(
    rng: np.random.Generator, n: int, n_candidates: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True probabilities, labels, and each model's predictions (models × n; control first)."""
    x = rng.standard_normal(n)
    truth = _sigmoid(-1.4 + 1.2 * x)
    labels = (rng.random(n) < truth).astype(np.int8)
    control = _sigmoid(-1.4 + 1.2 * (x + 0.8 * rng.standard_normal(n)))
    candidates = [
        _sigmoid(-1.4 + 1.2 * (x + 0.4 * rng.standard_normal(n)) + PREDICTION_OFFSET)
        for _ in range(n_candidates)
    ]
    return truth, labels, np.vstack([control, *candidates])


def _expected_calibration_error(predicted: np.ndarray, truth: np.ndarray) -> float:
    """ECE of 10 uniform bins (the library's binning) against the true probabilities."""
    edges = np.linspace(0.0, 1.0, CALIBRATION_BINS + 1)
    index = np.searchsorted(edges[1:-1], predicted, side="left")
    counts = np.bincount(index, minlength=CALIBRATION_BINS)
    gap = np.bincount(index, weights=truth - predicted, minlength=CALIBRATION_BINS)
    return float(np.abs(gap).sum() / predicted.size) if counts.sum() else math.nan


def _auc(scores: np.ndarray, labels: np.ndarray) -> float:
    ranks = np.argsort(np.argsort(scores)) + 1.0
    positive = labels == 1
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def feature_psi(shift: float, n_bins: int = PSI_BINS) -> float:
    """Population PSI of ``N(shift, 1)`` against ``N(0, 1)`` in ``n_bins`` quantile bins of the
    reference (closed form; PSI is invariant to the monotone map to session minutes)."""
    normal = NormalDist()
    edges = [-math.inf, *(normal.inv_cdf(i / n_bins) for i in range(1, n_bins)), math.inf]
    total = 0.0
    for low, high in pairwise(edges):
        expected = 1.0 / n_bins
        actual = normal.cdf(high - shift) - normal.cdf(low - shift)
        total += (actual - expected) * math.log(actual / expected)
    return total


def model_truth(seed: int, variants: tuple[str, ...]) -> dict[str, float]:
    """The population truths of the model logs (module docstring), by Monte Carlo.

    Keys: ``ndcg@10_difference_<candidate>``, ``ndcg@10_<variant>``,
    ``top_slot_click_rate_<variant>`` (control: the logging policy's own),
    ``ece_<variant>``, ``calibration_in_the_large_<variant>`` (mean prediction minus mean true
    probability), ``auc_<variant>``, ``interleaving_preference_<first candidate>``,
    ``psi_feature_activity`` and ``psi_feature_session_minutes`` (a window day against the
    pre-period).
    """
    control, *candidates = variants
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_SEED_KEY, 0)))
    requests = _draw_requests(rng, TRUTH_DRAWS)
    served, _ = _logging_policy(rng, requests.control_score)
    shown = np.take_along_axis(requests.attractiveness, served, axis=1)
    _, labels = _clicks_and_labels(rng, shown)
    labels_by_item = np.empty_like(labels)
    np.put_along_axis(labels_by_item, served, labels, axis=1)
    ndcg_control = _ndcg(labels, NDCG_K)
    truth: dict[str, float] = {f"ndcg@10_{control}": float(np.nanmean(ndcg_control))}
    truth[f"top_slot_click_rate_{control}"] = float(shown[:, 0].mean())
    candidate_order = _descending(requests.candidate_score)
    ndcg_candidate = _ndcg(np.take_along_axis(labels_by_item, candidate_order, axis=1), NDCG_K)
    top_candidate = np.take_along_axis(requests.attractiveness, candidate_order[:, :1], axis=1)
    for name in candidates:
        truth[f"ndcg@10_{name}"] = float(np.nanmean(ndcg_candidate))
        truth[f"ndcg@10_difference_{name}"] = float(np.nanmean(ndcg_candidate - ndcg_control))
        truth[f"top_slot_click_rate_{name}"] = float(top_candidate.mean())
    if candidates:
        merged, teams = _team_draft(rng, _descending(requests.control_score), candidate_order)
        shown_merged = np.take_along_axis(requests.attractiveness, merged, axis=1)
        clicks, _ = _clicks_and_labels(rng, shown_merged)
        outcome = _interleaving_outcome(teams, clicks)
        truth[f"interleaving_preference_{candidates[0]}"] = float(np.nanmean(outcome) - 0.5)
    probability, outcome_labels, predicted = _predictions(rng, TRUTH_DRAWS * 2, len(candidates))
    for name, scores in zip(variants, predicted, strict=True):
        truth[f"ece_{name}"] = _expected_calibration_error(scores, probability)
        truth[f"calibration_in_the_large_{name}"] = float(scores.mean() - probability.mean())
        truth[f"auc_{name}"] = _auc(scores, outcome_labels)
    truth["psi_feature_activity"] = 0.0
    truth["psi_feature_session_minutes"] = feature_psi(FEATURE_SHIFT)
    return dict(sorted(truth.items()))


def _unit_ids(
    rng: np.random.Generator, n: int, n_units: int, id_width: int, salt: str, weights: list[float]
) -> tuple[list[str], np.ndarray]:
    """``n`` units drawn from the simulated population and their variant indices (by hash)."""
    indices = rng.integers(0, n_units, size=n)
    ids = [f"u{i:0{id_width}d}" for i in indices.tolist()]
    bounds = np.array(bucket_upper_bounds(weights))
    buckets = np.fromiter((hash_bucket(salt, u) for u in ids), np.int64, count=n)
    return ids, np.searchsorted(bounds, buckets, side="right")


def _timestamps(rng: np.random.Generator, day: dt.date, n: int) -> np.ndarray:
    start = (day - dt.date(1970, 1, 1)).days * _US_PER_DAY
    return start + (rng.random(n) * 0.95 * _US_PER_DAY).astype(np.int64)


Writer = Callable[[pa.Table, Path], None]
"""Writes a table to a file path (the A/B simulator's writer, which knows the format)."""


def _parquet_writer(table: pa.Table, path: Path) -> None:
    pq.write_table(table, path, compression="zstd")


def _write(
    table: pa.Table, out_dir: Path, kind: str, day: dt.date, write: Writer, ext: str
) -> None:
    folder = out_dir / kind / f"date={day.isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    write(table, folder / f"part-00000.{ext}")


def simulate_model_logs(
    out_dir: Path,
    *,
    seed: int,
    variants: tuple[tuple[str, float], ...],
    salt: str,
    n_units: int,
    id_width: int,
    window: list[dt.date],
    pre_period: list[dt.date],
    sizes: ModelLogSizes,
    write: Writer = _parquet_writer,
    ext: str = "parquet",
    progress: Callable[[str], None] | None = None,
) -> dict[str, int]:
    """Write the ranking, prediction and interleaving logs; return their row counts.

    Ranking and interleaving requests come from units of the control arm (production traffic);
    prediction logs score units of every arm, on the pre-period days too.
    """
    names = tuple(name for name, _ in variants)
    control, *candidates = names
    weights = [w for _, w in variants]
    counts = {f"{kind}_rows": 0 for kind in LOG_KINDS}
    for day_index, day in enumerate([*pre_period, *window]):
        rng = np.random.default_rng(
            np.random.SeedSequence(seed, spawn_key=(_SEED_KEY, 1, day_index))
        )
        in_window = day in window
        if in_window and sizes.ranking_requests and candidates:
            table = _ranking_day(
                rng, day, sizes.ranking_requests, names, n_units, id_width, salt, weights
            )
            _write(table, out_dir, "ranking", day, write, ext)
            counts["ranking_rows"] += table.num_rows
        if sizes.predictions:
            feature_rng = np.random.default_rng(
                np.random.SeedSequence(seed, spawn_key=(_SEED_KEY, 2, day_index))
            )
            table = _predictions_day(
                rng, day, sizes.predictions, names, n_units, id_width, salt, weights
            )
            table = _with_features(feature_rng, table, shifted=in_window)
            _write(table, out_dir, "predictions", day, write, ext)
            counts["predictions_rows"] += table.num_rows
        if in_window and sizes.interleaved_requests and candidates:
            table = _interleaving_day(
                rng,
                day,
                sizes.interleaved_requests,
                (control, candidates[0]),
                n_units,
                id_width,
                salt,
                weights,
            )
            _write(table, out_dir, "interleaving", day, write, ext)
            counts["interleaving_rows"] += table.num_rows
        if progress is not None:
            progress(f"{day.isoformat()} model logs written")
    return counts


def _control_units(
    rng: np.random.Generator, n: int, n_units: int, id_width: int, salt: str, weights: list[float]
) -> list[str]:
    """``n`` requesting units of the control arm (production traffic), drawn with replacement."""
    ids, variant = _unit_ids(rng, 3 * n + 16, n_units, id_width, salt, weights)
    control_ids = [u for u, v in zip(ids, variant.tolist(), strict=True) if v == 0]
    return [control_ids[i % len(control_ids)] for i in range(n)] if control_ids else ids[:n]


def _ranking_day(
    rng: np.random.Generator,
    day: dt.date,
    n: int,
    names: tuple[str, ...],
    n_units: int,
    id_width: int,
    salt: str,
    weights: list[float],
) -> pa.Table:
    m = ITEMS_PER_REQUEST
    units = _control_units(rng, n, n_units, id_width, salt, weights)
    requests = _draw_requests(rng, n)
    served, propensity = _logging_policy(rng, requests.control_score)
    shown = np.take_along_axis(requests.attractiveness, served, axis=1)
    _, labels = _clicks_and_labels(rng, shown)
    labels_by_item = np.empty_like(labels)
    np.put_along_axis(labels_by_item, served, labels, axis=1)
    times = _timestamps(rng, day, n)
    request_ids = [f"r{day:%Y%m%d}-{i:06d}" for i in range(n)]
    item_ids = rng.integers(0, 50_000, size=(n, m))
    columns: dict[str, list[np.ndarray]] = {
        k: [] for k in ("request", "variant", "item", "position", "score", "propensity", "label")
    }
    positions = np.tile(np.arange(1, m + 1), (n, 1))
    # The control's served list, then each candidate's shadow ranking of the same items.
    scores_by_model = [requests.control_score] + [requests.candidate_score] * (len(names) - 1)
    for index, scores in enumerate(scores_by_model):
        order = served if index == 0 else _descending(scores)
        columns["request"].append(np.repeat(np.arange(n), m))
        columns["variant"].append(np.full(n * m, index))
        columns["item"].append(np.take_along_axis(item_ids, order, axis=1).ravel())
        columns["position"].append(positions.ravel())
        columns["score"].append(
            np.round(_sigmoid(np.take_along_axis(scores, order, axis=1)), 6).ravel()
        )
        columns["propensity"].append(
            np.round(propensity, 8).ravel() if index == 0 else np.full(n * m, np.nan)
        )
        columns["label"].append(np.take_along_axis(labels_by_item, order, axis=1).ravel())
    request = np.concatenate(columns["request"])
    propensities = np.concatenate(columns["propensity"])
    return pa.table(
        {
            "request_id": pa.array(request_ids).take(pa.array(request)),
            "unit_id": pa.array(units).take(pa.array(request)),
            "variant": pa.array(list(names)).take(pa.array(np.concatenate(columns["variant"]))),
            "item_id": pa.array([f"i{i:05d}" for i in np.concatenate(columns["item"]).tolist()]),
            "position": pa.array(np.concatenate(columns["position"]).astype(np.int32)),
            "score": pa.array(np.concatenate(columns["score"])),
            "propensity": pa.array(propensities, mask=np.isnan(propensities)),
            "label": pa.array(np.concatenate(columns["label"]).astype(np.int32)),
            "event_time": pa.array(times[request], type=pa.timestamp("us", tz="UTC")),
        }
    )


def _predictions_day(
    rng: np.random.Generator,
    day: dt.date,
    n: int,
    names: tuple[str, ...],
    n_units: int,
    id_width: int,
    salt: str,
    weights: list[float],
) -> pa.Table:
    units, _ = _unit_ids(rng, n, n_units, id_width, salt, weights)
    _, labels, predicted = _predictions(rng, n, len(names) - 1)
    times = _timestamps(rng, day, n)
    model = np.repeat(np.arange(len(names)), n)
    return pa.table(
        {
            "unit_id": pa.array(units * len(names)),
            "model": pa.array(list(names)).take(pa.array(model)),
            "score": pa.array(np.round(predicted.ravel(), 6)),
            "label": pa.array(np.tile(labels, len(names)).astype(np.int32)),
            "event_time": pa.array(np.tile(times, len(names)), type=pa.timestamp("us", tz="UTC")),
        }
    )


def _with_features(rng: np.random.Generator, table: pa.Table, *, shifted: bool) -> pa.Table:
    """The prediction rows with their unit's features (module docstring): one draw per unit-row,
    the same on every model's copy of the row."""
    n_models = len(set(table.column("model").to_pylist()))
    n = table.num_rows // n_models
    activity = rng.standard_normal(n)
    session = np.exp(
        FEATURE_LOG_MEAN
        + FEATURE_LOG_SD * (rng.standard_normal(n) + (FEATURE_SHIFT if shifted else 0.0))
    )
    return table.append_column(
        "feature_activity", pa.array(np.round(np.tile(activity, n_models), 6))
    ).append_column("feature_session_minutes", pa.array(np.round(np.tile(session, n_models), 4)))


def _interleaving_day(
    rng: np.random.Generator,
    day: dt.date,
    n: int,
    pair: tuple[str, str],
    n_units: int,
    id_width: int,
    salt: str,
    weights: list[float],
) -> pa.Table:
    m = ITEMS_PER_REQUEST
    units = _control_units(rng, n, n_units, id_width, salt, weights)
    requests = _draw_requests(rng, n)
    merged, teams = _team_draft(
        rng, _descending(requests.control_score), _descending(requests.candidate_score)
    )
    clicks, _ = _clicks_and_labels(rng, np.take_along_axis(requests.attractiveness, merged, axis=1))
    times = _timestamps(rng, day, n)
    request = np.repeat(np.arange(n), m)
    item_ids = rng.integers(0, 50_000, size=(n, m))
    return pa.table(
        {
            "request_id": pa.array([f"q{day:%Y%m%d}-{i:06d}" for i in range(n)]).take(
                pa.array(request)
            ),
            "unit_id": pa.array(units).take(pa.array(request)),
            "item_id": pa.array(
                [f"i{i:05d}" for i in np.take_along_axis(item_ids, merged, axis=1).ravel().tolist()]
            ),
            "position": pa.array(np.tile(np.arange(1, m + 1), n).astype(np.int32)),
            "team": pa.array(list(pair)).take(pa.array(teams.ravel().astype(np.int64))),
            "click": pa.array(clicks.ravel().astype(np.int32)),
            "event_time": pa.array(times[request], type=pa.timestamp("us", tz="UTC")),
        }
    )
