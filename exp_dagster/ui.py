"""``make ui``: ``dagster dev`` that stops on Ctrl-C however it was started.

A program started in the background by a non-interactive shell (``make ui &`` in a script, an
editor's task runner, an agent's shell) inherits SIGINT as *ignored*, and Python then installs no
KeyboardInterrupt handler: Ctrl-C (SIGINT to the process group) reaches ``dagster dev``, its
webserver and its daemon and does nothing, and ``make`` waits on them for ever. A shell cannot
undo that (POSIX keeps signals ignored on entry ignored), so this launcher restores SIGINT's
default and replaces itself with ``dagster dev`` (the arguments are passed through): then Ctrl-C
stops the webserver, the daemon and the code servers within seconds, as in a terminal.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path


def main(argv: Sequence[str] | None = None) -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # kept across exec: dagster dev handles it
    dagster = Path(sys.executable).with_name("dagster")
    os.execv(dagster, [str(dagster), "dev", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    main()
