"""The project's dagster.yaml loads, and says what ARCHITECTURE.md promises."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg

from exp_dagster.home import PROJECT_ROOT


def test_dagster_yaml_loads_with_one_writer_at_a_time(tmp_path: Path) -> None:
    shutil.copyfile(PROJECT_ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        settings = instance.get_settings("concurrency")
        assert settings["runs"]["tag_concurrency_limits"] == [
            {"key": "exp_dagster/writer", "limit": 1}
        ]
        assert settings["pools"]["default_limit"] == 1
        assert instance.get_settings("telemetry") == {"enabled": False}
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
