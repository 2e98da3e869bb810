"""The `bmclip` program's first module: a Ctrl-C while the CLI is still importing is one line and exit status 130, as later.

Only the standard library is imported before the CLI, so nothing can be interrupted outside this
guard; biomedclip_cli.cli handles a Ctrl-C from then on.
"""

from __future__ import annotations

import sys

INTERRUPTED_EXIT_CODE = 130
INTERRUPTED_LINE = "bmclip: interrupted"


def main() -> None:
    """Import the CLI and run it."""
    try:
        from biomedclip_cli.cli import main as run_cli
    except KeyboardInterrupt:
        sys.stderr.write(INTERRUPTED_LINE + "\n")
        raise SystemExit(INTERRUPTED_EXIT_CODE) from None
    run_cli()
