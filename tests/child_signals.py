"""Children a test interrupts start with SIGINT and SIGQUIT at their defaults, whatever the test runner inherited.

A suite started as a background job (`make test &`, `nohup`, some CI runners) inherits SIGINT and
SIGQUIT as ignored, and children inherit that in turn: Python then installs no KeyboardInterrupt
handler, and a test's Ctrl-C would reach a process that cannot hear it. Pass `preexec_fn=default_signals`
to every process a test signals.
"""

from __future__ import annotations

import signal


def default_signals() -> None:
    """In the child, before exec: SIGINT and SIGQUIT back to their default dispositions."""
    for signum in (signal.SIGINT, signal.SIGQUIT):
        signal.signal(signum, signal.SIG_DFL)
