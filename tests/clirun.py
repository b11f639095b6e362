"""Running the `concierge` command line in the test process, its output captured."""

from __future__ import annotations

from io import StringIO

from bot.cli.main import main


def run(*argv: str) -> tuple[int, str]:
    """`concierge ARGV…`: its exit code and what it printed."""
    out = StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()
