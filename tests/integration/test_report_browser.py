"""The report as a person sees it: materialised by the pipeline, opened in headless Chromium.

"No external request" is proven three ways: the HTML has no URL but ``data:`` (static scan);
the page is served from a loopback server that must see exactly one request (the page itself,
so no relative resource either); and Chromium's own network log must hold no request started
by the page (browser-internal requests, which Chromium makes whatever the page, are told apart
by their initiator). A control page with an external stylesheet shows the log catches one.
"""

from __future__ import annotations

import base64
import datetime as dt
import http.server
import io
import json
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from PIL import Image

from exp_dagster.cli import main
from exp_dagster.partitions import experiment_day_key
from tests.browser import require_chromium, run_chromium
from tests.conftest import Pipeline
from tests.integration.test_analyze import hand_made_logs, write_spec
from tests.unit.test_report import assert_png, assert_self_contained, references

# Every host name fails to resolve, so even a request the checks below missed could not leave.
OFFLINE = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"


@contextmanager
def serve(page: Path) -> Iterator[tuple[str, list[str]]]:
    """Serve ``page`` alone on a loopback port; yields its URL and the paths requested."""
    requested: list[str] = []
    body = page.read_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requested.append(self.path)
            found = self.path == "/report.html"
            self.send_response(200 if found else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(body if found else b"")

        def log_message(self, *_args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/report.html", requested
    finally:
        server.shutdown()
        server.server_close()


def page_requests(net_log: Path) -> list[str]:
    """URLs of the network requests the page started (not Chromium's own background ones)."""
    log = json.loads(net_log.read_text())
    names = {number: name for name, number in log["constants"]["logEventTypes"].items()}
    urls: dict[int, str] = {}
    from_page: set[int] = set()
    for event in log["events"]:
        params, source = event.get("params") or {}, event["source"]["id"]
        if "url" in params:
            urls.setdefault(source, params["url"])
        if names[event["type"]] == "URL_REQUEST_START_JOB" and params.get("initiator") not in (
            None,
            "not an origin",
        ):
            from_page.add(source)
    return sorted(urls.get(source, "?") for source in from_page)


def open_in_chromium(page: Path, work: Path) -> tuple[str, Path, list[str], list[str]]:
    """The DOM and a screenshot of ``page`` (two Chromium runs), the paths its server saw, and
    the requests the page started in the first run according to Chromium's network log."""
    with serve(page) as (url, requested):
        dom = run_chromium(
            OFFLINE,
            f"--log-net-log={work / 'net.json'}",
            "--virtual-time-budget=10000",
            "--dump-dom",
            url,
        )
        assert dom.returncode == 0, dom.stderr[-2000:]
        shot = work / "report.png"
        run_chromium(
            OFFLINE,
            f"--screenshot={shot}",
            "--window-size=1200,2400",
            "--virtual-time-budget=10000",
            url,
        )
    assert shot.exists(), "Chromium made no screenshot"
    return dom.stdout, shot, requested, page_requests(work / "net.json")


def assert_looks_like_a_page(shot: Path) -> None:
    image = Image.open(shot).convert("RGB")
    assert image.size == (1200, 2400)
    colours = image.getcolors(maxcolors=1_000_000)
    assert colours is None or len(colours) > 50, "the screenshot is (nearly) a single colour"
    # Text and charts are spread over the page: no horizontal band of 600 px is blank.
    for top in range(0, 1800, 600):
        band = image.crop((0, top, 1200, top + 600)).getcolors(maxcolors=1_000_000)
        assert band is None or len(band) > 5, f"the band at {top}px is empty"


def report_from_metadata(instance: dg.DagsterInstance, partition: str) -> tuple[Path, str]:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("report"), asset_partitions=[partition]),
        limit=1,
    ).records
    assert records, f"no report materialisation for {partition}"
    metadata = records[0].asset_materialization.metadata  # type: ignore[union-attr]
    return Path(str(metadata["path"].value)), str(metadata["summary"].value)


def test_the_control_page_shows_the_checks_catch_an_external_request(tmp_path: Path) -> None:
    require_chromium()
    page = tmp_path / "bad.html"
    page.write_text(
        '<!DOCTYPE html><html><head><link rel="stylesheet" href="https://cdn.example.org/x.css">'
        '</head><body><img src="chart.png"><p>hello</p></body></html>'
    )
    with pytest.raises(AssertionError):
        assert_self_contained(page.read_text())
    _dom, _shot, requested, from_page = open_in_chromium(page, tmp_path)
    assert "https://cdn.example.org/x.css" in from_page
    assert any(url.endswith("/chart.png") for url in from_page)
    assert "/chart.png" in requested


def test_demo_report_renders_offline_with_the_decision_and_charts(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    require_chromium()
    day = pipeline.days[-1]
    key = str(experiment_day_key(pipeline.experiment.spec.id, day))
    path, summary = report_from_metadata(pipeline.instance, key)
    assert path == pipeline.database.parent / "reports" / pipeline.experiment.spec.id / (
        f"{day.isoformat()}.html"
    )
    html = path.read_text()
    assert_self_contained(html)
    for uri in references(html).images:
        assert_png(uri)
    # The UI summary: the decision, then the main chart as an embedded image.
    verdict = summary.split("**")[1]
    assert summary.index("data:image/png;base64,") > summary.index(verdict)
    # Gates come from the instance the pipeline ran on.
    assert html.count(">passed</span>") == 4 and "not recorded" not in html

    dom, shot, requested, from_page = open_in_chromium(path, tmp_path)
    assert requested == ["/report.html"] * 2, "the page asked its server for more than itself"
    assert from_page == [], f"the page made external requests: {from_page}"
    assert verdict.split()[0] in dom and 'id="decision"' in dom
    images = references(dom).images
    assert len(images) >= 3 and all(uri.startswith("data:image/png;base64,") for uri in images)
    assert_looks_like_a_page(shot)


def test_each_day_has_its_own_report_and_rematerialising_rewrites_it(pipeline: Pipeline) -> None:
    reports = pipeline.database.parent / "reports" / pipeline.experiment.spec.id
    assert sorted(p.name for p in reports.iterdir()) == [f"{d}.html" for d in pipeline.days]
    first = reports / f"{pipeline.days[0]}.html"
    before = first.read_bytes()
    key = experiment_day_key(pipeline.experiment.spec.id, pipeline.days[0])
    result = dg.materialize(
        [pipeline.defs.get_assets_def("report")],
        partition_key=str(key),
        instance=pipeline.instance,
        resources=pipeline.resources,
    )
    assert result.success
    assert first.read_bytes() == before


def test_srm_report_leads_with_why_and_never_shows_ship(tmp_path: Path) -> None:
    require_chromium()
    hand_made_logs(tmp_path, units=2000, lose_share=0.25)
    write_spec(tmp_path)
    work = tmp_path / "home"
    code = main(
        [
            "analyze",
            "--experiment",
            str(tmp_path / "experiments" / "rerank_test.yaml"),
            "--exposures",
            str(tmp_path / "exposures.csv"),
            "--events",
            str(tmp_path / "events.jsonl"),
            "--home",
            str(work),
        ]
    )
    assert code == 0
    reports = sorted((work / "reports" / "rerank_test").iterdir())
    assert reports, "analyze wrote no report"
    html = reports[-1].read_text()
    assert "SHIP" not in html
    banner = html.index('id="decision"')
    assert "INVALID" in html[banner : banner + 300]
    assert html.index("Sample ratio mismatch") < html.index("<figure")
    assert html.count(">passed</span>") == 4, "the data gates passed: only the split is broken"
    assert_self_contained(html)

    with tempfile.TemporaryDirectory() as scratch:
        dom, shot, requested, from_page = open_in_chromium(reports[-1], Path(scratch))
        assert requested == ["/report.html"] * 2 and from_page == []
        assert "Sample ratio mismatch" in dom and "SHIP" not in dom
        assert_looks_like_a_page(shot)
        image = Image.open(shot).convert("RGB")
        # The banner at the top is dark (INVALID), not the green of a shipped variant.
        r, g, b = image.getpixel((600, 130))
        assert max(r, g, b) < 80, (r, g, b)


def test_report_command_writes_the_report_of_the_last_day(
    pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXP_DAGSTER_WAREHOUSE", str(pipeline.database))
    monkeypatch.setenv("EXP_DAGSTER_CATALOG", str(pipeline.database.parent / "catalog"))
    monkeypatch.setenv("EXP_DAGSTER_REPORTS", str(tmp_path / "reports"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    experiment = pipeline.experiment.spec.id
    assert main(["report", "--experiment", experiment]) == 0
    last = tmp_path / "reports" / experiment / f"{pipeline.days[-1]}.html"
    assert last.exists()
    assert main(["report", "--experiment", experiment, "--as-of", "2001-01-01"]) == 2


def test_report_png_decodes(pipeline: Pipeline) -> None:
    """The embedded main chart in the UI summary is a real image of a sensible size."""
    day: dt.date = pipeline.days[-1]
    _path, summary = report_from_metadata(
        pipeline.instance, str(experiment_day_key(pipeline.experiment.spec.id, day))
    )
    encoded = summary.split("data:image/png;base64,")[1].split(")")[0]
    image = Image.open(io.BytesIO(base64.b64decode(encoded)))
    assert image.width > 600 and image.height > 300
