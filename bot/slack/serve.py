"""`concierge serve`: run the Slack app (HTTP mode under gunicorn, or Socket Mode).

`bot.cli.main` adds the subcommand with `add_serve_parser(sub)`; `python -m bot.slack.serve`
runs the same handler on its own (handy before installing the console script).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from bot.errors import ConciergeError, KnowledgeError
from bot.logs import LogSettings, configure_logging
from bot.settings import MATCHER_MODES

SERVE_DESCRIPTION = """\
Answer employees in Slack. HTTP mode (the default) runs gunicorn on $HOST:$PORT with
Slack's events, slash command and interactivity all at /slack/events, and GET /healthz
for health checks. Socket Mode is used when SLACK_APP_TOKEN is set (no public URL needed).

environment:
  SLACK_BOT_TOKEN        bot token, xoxb-… (required)
  SLACK_SIGNING_SECRET   signing secret (required in HTTP mode)
  SLACK_APP_TOKEN        app-level token, xapp-…: switches to Socket Mode
  SLACK_API_URL          Web API base URL (default https://slack.com/api/)
  HOST                   address to listen on (default 0.0.0.0: every interface;
                         127.0.0.1 behind a proxy on the same host)
  PORT                   HTTP port (default 3000)
  WEB_CONCURRENCY        gunicorn worker processes (default 2)
  DATABASE_URL           database for state shared by workers (default: SQLite file
                         $CONCIERGE_DATA_DIR/concierge.sqlite3, CONCIERGE_DATA_DIR=./data)
  CONCIERGE_SERVICE_DESK_TEXT, CONCIERGE_SERVICE_DESK_URL
                         where "I don't know" answers send people
  CONCIERGE_TAKEOVER_AFTER
                         seconds a worker may be silent before another answers the
                         events it acknowledged but did not answer, and delivers the
                         requests it was delivering (default 20)
  CONCIERGE_WEBHOOK_<NAME>_URL, CONCIERGE_WEBHOOK_<NAME>_SECRET
                         the tool (https) and shared secret of `webhook: <name>` in
                         request forms
  CONCIERGE_DELIVERY_GIVE_UP
                         seconds a request's delivery is retried before the requester
                         and the admins are told it failed (default 14400)
  CONCIERGE_DIGEST       the owners' digest: weekly [DAY] [HH:MM] [ZONE] (default:
                         Mondays 09:00 UTC), daily [HH:MM] [ZONE], or off
  LOG_LEVEL              DEBUG, INFO (default), WARNING, ERROR, CRITICAL
  CONCIERGE_LOG_CONTENT  on: logs also hold question texts and Slack user ids
                         (default off; see "What is recorded" in docs/admins.md)
"""


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be between 1 and 65535, not {value}")
    return value


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--knowledge", metavar="DIR",
                        help="knowledge directory (default: $CONCIERGE_KNOWLEDGE, else the "
                             "sample catalogue shipped in the repo)")
    parser.add_argument("--matcher", choices=MATCHER_MODES,
                        help="matching mode (default: $CONCIERGE_MATCHER, else auto)")
    parser.add_argument("--host", metavar="ADDRESS",
                        help="address to listen on in HTTP mode (default: $HOST, else 0.0.0.0)")
    parser.add_argument("--port", type=_port, metavar="N",
                        help="HTTP port (default: $PORT, else 3000)")
    parser.add_argument("--workers", type=_positive, metavar="N",
                        help="gunicorn worker processes (default: $WEB_CONCURRENCY, else 2)")
    parser.set_defaults(handler=cmd_serve)


def add_serve_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add `serve` to the `concierge` command's subparsers."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "serve", help="run the Slack app (HTTP or Socket Mode)",
        description=SERVE_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    _configure(parser)
    return parser


def cmd_serve(args: argparse.Namespace, out: TextIO) -> int:
    # Deferred: `concierge ask` and `check` must not pay for importing Bolt and gunicorn.
    from bot.slack.app import SlackConfig, listen_host
    from bot.slack.server import serve

    configure_logging(LogSettings.from_env())
    config = SlackConfig.from_env(knowledge=args.knowledge, matcher=args.matcher)
    if args.host is not None:
        config = dataclasses.replace(config, host=listen_host(args.host))
    if args.port is not None:
        config = dataclasses.replace(config, port=args.port)
    if args.workers is not None:
        config = dataclasses.replace(config, workers=args.workers)
    mode = "Socket Mode" if config.socket_mode else f"HTTP on {config.host} port {config.port}"
    print(f"concierge: serving {config.knowledge} in {mode}", file=out, flush=True)
    return serve(config)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.slack.serve",
                                     description=SERVE_DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    _configure(parser)
    args = parser.parse_args(argv)
    try:
        return cmd_serve(args, sys.stdout)
    except KnowledgeError as exc:
        for problem in exc.problems:
            print(problem.render(), file=sys.stderr)
        print(f"concierge: the knowledge directory has errors ({exc})", file=sys.stderr)
        return 2
    except ConciergeError as exc:
        print(f"concierge: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
