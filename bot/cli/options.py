"""Options several `concierge` commands share, worded once."""

from __future__ import annotations

import argparse

from bot.settings import MATCHER_MODES


def add_knowledge(p: argparse.ArgumentParser) -> None:
    p.add_argument("--knowledge", metavar="DIR",
                   help="knowledge directory (default: $CONCIERGE_KNOWLEDGE, else the sample "
                        "catalogue shipped in the repo)")


def add_matcher(p: argparse.ArgumentParser, purpose: str = "") -> None:
    """`--matcher`; `purpose` says what it decides for a command that does not answer."""
    what = f"matching mode {purpose}".strip()
    p.add_argument("--matcher", choices=MATCHER_MODES,
                   help=f"{what} (default: $CONCIERGE_MATCHER, else auto: semantic when the "
                        "embedding model is installed, lexical otherwise)"
                        + ("; use the one `serve` runs" if purpose else ""))
