"""Summaries of results and decisions for people: text for the terminal, Markdown for the UI."""

from exp_dagster.report.summary import decision_markdown, results_markdown, results_text

__all__ = ["decision_markdown", "results_markdown", "results_text"]
