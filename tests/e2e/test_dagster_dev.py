"""End to end against a running Dagster: ``dagster dev`` (webserver + daemon) on 127.0.0.1 over
``workspace.yaml`` in a temporary home, driven through its GraphQL API with plain HTTP.

A new experiment spec and its logs are dropped into place; the registry sensor registers the
partition, the queued runs succeed one at a time, the decision materialises; a backfill launched
through GraphQL completes; Chromium shows the asset graph and the decision's page. Sensors tick
every second here (``EXP_DAGSTER_SENSOR_INTERVAL``); everything else is the production setup.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from exp_dagster.home import PROJECT_ROOT
from exp_dagster.partitions import experiment_day_key
from exp_dagster.simulate import SimulationConfig, simulate
from tests import browser
from tests.conftest import write_spec

# One day, and a spec without pre-period (the simulator needs a day of history): each run is a
# process that imports the code location (seconds on two cores), so the fewer runs the faster;
# the flow is the same for a longer window.
CONFIG = SimulationConfig(
    experiment_id="ranker_e2e", salt="ranker_e2e-salt", n_units=600, days=1, pre_days=1, seed=5
)
DAYS = [CONFIG.start]
KEYS = [str(experiment_day_key(CONFIG.experiment_id, day)) for day in DAYS]
STARTUP_TIMEOUT = 120.0
FLOW_TIMEOUT = 180.0
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    url: str
    home: Path
    log: Path

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(
            f"{self.url}/graphql", body, {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            payload = json.loads(response.read())
        assert not payload.get("errors"), payload["errors"]
        return payload["data"]

    def runs(self, backfill_id: str | None = None) -> list[dict[str, Any]]:
        tags = f'(filter: {{tags: [{{key: "dagster/backfill", value: "{backfill_id}"}}]}})'
        data = self.graphql(
            "{ runsOrError%s { ... on Runs { results { runId jobName status "
            "tags { key value } } } } }" % (tags if backfill_id else "")
        )
        return data["runsOrError"]["results"]

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


def wait_for(what: str, probe: Callable[[], T | None], server: Server, timeout: float) -> T:
    """Poll ``probe`` until it returns something truthy; fail with the server's log otherwise."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = probe()
            if value:
                return value
        except (urllib.error.URLError, ConnectionError, OSError) as error:
            last_error = error
        time.sleep(0.5)
    runs = ""
    try:
        runs = json.dumps([(r["jobName"], r["status"]) for r in server.runs()], indent=None)
    except Exception as error:  # the server may be the problem
        runs = f"(no runs: {error})"
    pytest.fail(
        f"timed out after {timeout:.0f}s waiting for {what} (last error: {last_error}); "
        f"runs: {runs}\n--- dagster dev log ---\n{server.tail()}"
    )


def partition_of(run: dict[str, Any]) -> str | None:
    return next((t["value"] for t in run["tags"] if t["key"] == "dagster/partition"), None)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("e2e")
    home = root / "home"
    dagster_home = root / "dagster"
    dagster_home.mkdir(parents=True)
    shutil.copyfile(PROJECT_ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
    (home / "catalog" / "experiments").mkdir(parents=True)
    shutil.copyfile(PROJECT_ROOT / "catalog" / "metrics.yaml", home / "catalog" / "metrics.yaml")
    port = free_port()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(dagster_home),
        "EXP_DAGSTER_HOME": str(home),
        "EXP_DAGSTER_CATALOG": str(home / "catalog"),
        "EXP_DAGSTER_FIRST_DATE": "2026-09-01",
        "EXP_DAGSTER_SENSOR_INTERVAL": "1",
    }
    log = root / "dagster-dev.log"
    dagster = Path(sys.executable).parent / "dagster"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(dagster), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: we stop it and all its children
        )
    served = Server(f"http://127.0.0.1:{port}", home, log)
    try:
        wait_for(
            "the code location to load",
            lambda: any(
                node["name"] == "__repository__"
                for node in served.graphql(
                    "{ repositoriesOrError { ... on RepositoryConnection { nodes { name } } } }"
                )["repositoriesOrError"].get("nodes", [])
            ),
            served,
            STARTUP_TIMEOUT,
        )
        yield served
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the whole process group (dagster dev, webserver, daemon, code server, runs)."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    except ProcessLookupError:
        pass
    finally:
        with contextlib.suppress(ProcessLookupError):  # children that outlived the parent
            os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def analysed(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Server:
    """Drop the logs and the spec into place and wait for both days' decisions."""
    staging = tmp_path_factory.mktemp("staging")
    simulate(staging / "landing", CONFIG)
    write_spec(staging / "catalog", CONFIG, pre_period_days=0)
    landing = server.home / "landing"
    landing.mkdir(parents=True, exist_ok=True)
    for kind in ("exposures", "events"):
        (staging / "landing" / kind).rename(landing / kind)
    spec = f"{CONFIG.experiment_id}.yaml"
    (staging / "catalog" / "experiments" / spec).rename(
        server.home / "catalog" / "experiments" / spec
    )

    def registered() -> bool:
        node = server.graphql(
            '{ assetNodeOrError(assetKey: {path: ["decision"]}) { ... on AssetNode { '
            "partitionKeysByDimension { name partitionKeys } } } }"
        )["assetNodeOrError"]
        dimensions = {d["name"]: d["partitionKeys"] for d in node["partitionKeysByDimension"]}
        return CONFIG.experiment_id in dimensions.get("experiment", [])

    wait_for("the registry sensor to add the partition", registered, server, FLOW_TIMEOUT)

    def analyses_done() -> list[dict[str, Any]] | None:
        runs = [r for r in server.runs() if r["jobName"] == "analyze_experiment_day"]
        failed = [r for r in server.runs() if r["status"] in ("FAILURE", "CANCELED")]
        assert not failed, f"runs failed: {failed}\n{server.tail()}"
        done = {partition_of(r) for r in runs if r["status"] == "SUCCESS"}
        return runs if set(KEYS) <= done else None

    wait_for("the analysis runs to succeed", analyses_done, server, FLOW_TIMEOUT)
    return server


DECISION_QUERY = """
query($partitions: [String!]) {
  assetOrError(assetKey: {path: ["decision"]}) {
    ... on Asset {
      assetMaterializations(partitions: $partitions) {
        partition runId
        metadataEntries { label ... on TextMetadataEntry { text } }
      }
    }
  }
}"""


def verdicts(server: Server) -> list[tuple[str, str, str]]:
    """(partition, run id, verdict) of every materialisation of the decision."""
    data = server.graphql(DECISION_QUERY, {"partitions": KEYS})
    found = []
    for event in data["assetOrError"]["assetMaterializations"]:
        verdict = {e["label"]: e.get("text") for e in event["metadataEntries"]}["decision"]
        assert verdict in {"SHIP", "ROLLBACK", "KEEP_RUNNING", "INCONCLUSIVE", "INVALID"}
        found.append((event["partition"], event["runId"], verdict))
    return found


def decisions(server: Server) -> dict[str, list[str]]:
    """Run ids of the decision's materialisations, by partition."""
    found: dict[str, list[str]] = {}
    for partition, run_id, _ in verdicts(server):
        found.setdefault(partition, []).append(run_id)
    return found


def test_sensor_registers_the_experiment_and_the_queued_runs_materialise_the_decision(
    analysed: Server,
) -> None:
    runs = [
        r for r in analysed.runs() if r["jobName"] in ("ingest_events", "analyze_experiment_day")
    ]
    ingests = sorted(partition_of(r) or "" for r in runs if r["jobName"] == "ingest_events")
    assert ingests == [day.isoformat() for day in DAYS]  # each day's facts once
    assert all(r["status"] == "SUCCESS" for r in runs)
    # Automation found nothing to refresh: the analysis runs had materialised the whole day.
    assert {r["jobName"] for r in analysed.runs()} == {"ingest_events", "analyze_experiment_day"}
    for run in runs:
        tags = {t["key"]: t["value"] for t in run["tags"]}
        assert tags["exp_dagster/writer"] == "duckdb"  # queued behind the one-writer limit
    assert set(decisions(analysed)) == set(KEYS)


def test_a_backfill_launched_through_graphql_completes(analysed: Server) -> None:
    before = decisions(analysed)
    launched = analysed.graphql(
        """mutation($params: LaunchBackfillParams!) {
          launchPartitionBackfill(backfillParams: $params) {
            __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message }
          }
        }""",
        {
            "params": {
                "selector": {
                    "partitionSetName": "analyze_experiment_day_partition_set",
                    "repositorySelector": {
                        "repositoryLocationName": "exp_dagster",
                        "repositoryName": "__repository__",
                    },
                },
                "partitionNames": KEYS,
            }
        },
    )["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    backfill_id = launched["backfillId"]

    def finished() -> list[dict[str, Any]] | None:
        runs = analysed.runs(backfill_id)
        if len(runs) == len(KEYS) and all(r["status"] in ("SUCCESS", "FAILURE") for r in runs):
            return runs
        return None

    runs = wait_for(f"backfill {backfill_id} to finish", finished, analysed, FLOW_TIMEOUT)
    assert sorted(partition_of(r) or "" for r in runs) == sorted(KEYS)
    assert {r["status"] for r in runs} == {"SUCCESS"}
    after = decisions(analysed)
    backfill_runs = {r["runId"] for r in runs}
    for key in KEYS:
        assert len(after[key]) == len(before[key]) + 1
        assert backfill_runs & set(after[key])


def test_the_ui_shows_the_asset_graph_and_the_decision_page(
    analysed: Server, tmp_path: Path
) -> None:
    browser.require_chromium()
    keep = os.environ.get("EXP_DAGSTER_SCREENSHOTS")  # a folder to keep the PNGs in, to look at
    group = "locations/exp_dagster/asset-groups/experiment_analysis"
    pages = {
        "asset_graph": (f"{analysed.url}/{group}", ["exposures", "decision", "results"]),
        # The page shows the latest decision's verdict and reasons (its Markdown metadata).
        "decision_page": (
            f"{analysed.url}/assets/decision",
            ["decision", "experiment_analysis", verdicts(analysed)[0][2]],
        ),
    }
    for name, (url, names) in pages.items():
        shot = browser.screenshot(url, tmp_path / f"{name}.png")
        dom = browser.dump_dom(url)
        if keep:
            shutil.copyfile(shot, Path(keep) / shot.name)
            (Path(keep) / f"{name}.html").write_text(dom)
        assert shot.stat().st_size > 10_000, f"the {name} screenshot is nearly empty"
        missing = [asset for asset in names if asset not in dom]
        assert not missing, f"the {name} page at {url} does not show {missing}"
