"""``make ui`` stops on Ctrl-C: SIGINT to its process group ends make, ``dagster dev``, the
webserver, the daemon and the code servers within seconds, even when it was started the way a
script starts a background job (SIGINT ignored on entry, which Python then never turns into
KeyboardInterrupt; exp_dagster/ui.py undoes it)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from exp_dagster.home import PROJECT_ROOT
from tests.e2e.test_dagster_dev import free_port

STARTUP_TIMEOUT = 120.0
STOP_TIMEOUT = 15.0


def group_members(group: int) -> list[str]:
    """The live processes of a process group (zombies left out), as ``ps`` lists them."""
    listing = subprocess.run(
        ["ps", "-e", "-o", "pid=,pgid=,stat=,args="], capture_output=True, text=True, check=True
    ).stdout
    return [
        line.strip()
        for line in listing.splitlines()
        if line.split()[1] == str(group) and not line.split()[2].startswith("Z")
    ]


def ignore_sigint() -> None:
    """What a non-interactive shell does to a job it starts with ``&``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def test_ctrl_c_stops_make_ui_and_every_child(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "EXP_DAGSTER_HOME": str(tmp_path / "home")}
    env.pop("DAGSTER_HOME", None)  # the Makefile's: <home>/dagster
    log = tmp_path / "make-ui.log"
    with log.open("wb") as out:
        make = subprocess.Popen(
            ["make", "--no-print-directory", "ui", f"UI_PORT={port}"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group, as a terminal's foreground job has
            preexec_fn=ignore_sigint,
        )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2).read()
                break
            except OSError:
                assert make.poll() is None, f"make ui exited early:\n{log.read_text()[-3000:]}"
                if time.monotonic() > deadline:
                    pytest.fail(f"make ui did not serve in time:\n{log.read_text()[-3000:]}")
                time.sleep(0.5)
        started = group_members(make.pid)
        assert any("dagster_webserver" in line for line in started), started
        assert any("dagster._daemon" in line for line in started), started

        stopping = time.monotonic()
        os.killpg(make.pid, signal.SIGINT)  # Ctrl-C in the terminal
        while group_members(make.pid) and time.monotonic() - stopping < STOP_TIMEOUT:
            make.poll()  # reap make when it exits
            time.sleep(0.2)
        left = group_members(make.pid)
        assert not left, f"still running {STOP_TIMEOUT:.0f}s after Ctrl-C: {left}"
        assert make.wait(timeout=5) is not None
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(make.pid, signal.SIGKILL)
        make.wait(timeout=10)
