"""The command-line layer: `concierge` (or `python -m bot`), the terminal's adapter.

`main` parses the commands (ask, check, eval, serve, the admin reports, suggest, digest,
db) and runs them; `render` prints a decision as text or as the `--json` contract; `reports`
prints the admin reports (and the stats chart); `suggest` the needs learnt from questions
and their patch; `digest` shows or sends the owners' digests; `options` holds the options
several commands share. It is the top layer: it may import every other, and nothing imports
it.
"""

from bot.cli.main import main

__all__ = ["main"]
