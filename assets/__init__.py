"""Software-defined assets, one module per stage: thin wrappers around the warehouse and engine."""

from assets.bandit import bandit_allocations
from assets.covariates import pre_period_covariates
from assets.evaluation import (
    offline_evaluation,
    offline_online_parity,
    raw_interleaving_logs,
    raw_prediction_logs,
    raw_ranking_logs,
)
from assets.event_facts import event_facts
from assets.exposures import exposures
from assets.landing import raw_event_logs, raw_exposure_logs
from assets.overview import experiments_overview
from assets.report import report
from assets.results import decision, results
from assets.unit_metrics import metric_statistics, unit_metrics

ALL_ASSETS = [
    raw_exposure_logs,
    raw_event_logs,
    exposures,
    event_facts,
    pre_period_covariates,
    unit_metrics,
    metric_statistics,
    results,
    bandit_allocations,
    raw_ranking_logs,
    raw_prediction_logs,
    raw_interleaving_logs,
    offline_evaluation,
    offline_online_parity,
    decision,
    report,
    experiments_overview,
]

__all__ = ["ALL_ASSETS"]
