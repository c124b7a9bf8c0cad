"""Headless Chromium (Debian's package) for tests that look at what a person would see.

``make test`` installs Chromium when it can (the ``browser`` target); where it is missing, the tests
that need it skip with that reason (see :func:`require_chromium`).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

# The flags this machine needs: no sandbox as root, and no background connections, which the
# closed network refuses (and which would count as external requests).
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def chromium() -> str | None:
    """The Chromium executable, or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def require_chromium() -> str:
    """The Chromium executable; skips the calling test with a reason when there is none."""
    path = chromium()
    if path is None:
        pytest.skip("Chromium is not installed (make test installs Debian's chromium as root)")
    return path


def run_chromium(*args: str, timeout: float = 180.0) -> subprocess.CompletedProcess[str]:
    """Run Chromium with the machine's flags and a fresh profile; returns the finished process."""
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        return subprocess.run(
            [require_chromium(), *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def screenshot(url: str, out: Path, *, width: int = 1400, height: int = 1000) -> Path:
    """A PNG of the page at ``url`` (``http://…`` or ``file://…``) after it settled.

    On a loaded machine headless Chromium has been seen to write the screenshot and then not
    exit: a screenshot on disk when the timeout strikes is the screenshot asked for.
    """
    try:
        stderr = run_chromium(
            f"--screenshot={out}",
            f"--window-size={width},{height}",
            "--virtual-time-budget=10000",
            url,
        ).stderr
    except subprocess.TimeoutExpired as exc:
        stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else ""
    if not out.exists() or out.stat().st_size == 0:
        raise AssertionError(f"Chromium made no screenshot of {url}: {stderr[-2000:]}")
    return out


def dump_dom(url: str) -> str:
    """The page's DOM after its scripts ran (``--dump-dom``)."""
    result = run_chromium("--virtual-time-budget=10000", "--dump-dom", url)
    if result.returncode != 0:
        raise AssertionError(f"Chromium could not load {url}: {result.stderr[-2000:]}")
    return result.stdout
