"""Shorter fixed sleeps in the Dagster daemon, for the end-to-end test only.

Two of the daemon's waits are module constants that ``dagster.yaml`` cannot change: the backfill
daemon sleeps 30 s between iterations (so a backfill launched from the UI waits up to 30 s before
its runs are queued, and as long again before it is marked complete), and the sensor daemon
loops at most every 5 s. The end-to-end test puts a ``sitecustomize`` on the ``PYTHONPATH`` of the
Dagster processes it starts that calls :func:`install`; the daemons then do exactly the same work,
only sooner. Nothing else changes: the webserver, the run queue with its tag limits, the run
launcher and the run workers are the production ones.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType

# module → (constant, seconds in the test). Dagster reads both at every loop, so patching the
# module after it is imported is enough. The sensor loop stays at 2 s: at 1 s the daemon takes
# about a third of a core, which the run processes need on a two-core machine. The backfill loop
# is cheap while no backfill is in progress, and each of its seconds is waited twice per backfill.
SHORTER_LOOPS = {
    "dagster._daemon.controller": ("DEFAULT_DAEMON_INTERVAL_SECONDS", 1),  # backfill daemon: 30 s
    "dagster._daemon.sensor": ("MIN_INTERVAL_LOOP_TIME", 2),  # sensor daemon: 5 s
}


class _ShortenLoops(importlib.abc.MetaPathFinder):
    """Finds the two daemon modules as usual and sets the constant once the module is loaded."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in SHORTER_LOOPS:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        constant, seconds = SHORTER_LOOPS[fullname]
        load = spec.loader.exec_module

        def exec_module(module: ModuleType) -> None:
            load(module)
            if hasattr(module, constant):  # missing() makes the test say so when it is gone
                setattr(module, constant, seconds)

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def install() -> None:
    """Shorten the loops of every daemon this process will import (called by sitecustomize)."""
    sys.meta_path.insert(0, _ShortenLoops())


def missing() -> list[str]:
    """The constants the installed Dagster no longer defines (the test fails naming them)."""
    import importlib

    return [
        f"{module}.{constant}"
        for module, (constant, _) in SHORTER_LOOPS.items()
        if not hasattr(importlib.import_module(module), constant)
    ]


SITECUSTOMIZE = "from tests.e2e.daemon_loops import install\n\ninstall()\n"
