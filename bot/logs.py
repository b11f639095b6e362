"""What Concierge's logs hold, and how each line is written.

Logs leave the process: they go to the platform's log drain, get shipped, searched and
kept for as long as someone configured, beyond `CONCIERGE_RETENTION_DAYS` and outside
what the database's purge reaches. So by default they hold what operations need (question
ids, decisions, offering ids, timings, errors) and not what people wrote or who they are:

- Content (a question's text, a Slack user id) is passed as `extra=content(...)`, never in
  the message itself; the formatter appends it only when `CONCIERGE_LOG_CONTENT=on`.
- The Slack SDK logs every Web API request and response body at DEBUG; those loggers stay
  at INFO unless content logging is on.
- Every line is one line: control characters in a message (a newline typed into the App
  Home search box, an escape sequence in a request path) are escaped, so nothing a user
  sends can forge a log line or drive a terminal. Tracebacks keep their lines, indented.

`configure_logging()` reads `LOG_LEVEL` and `CONCIERGE_LOG_CONTENT`; a bad value is a
`ConfigError` naming the variable.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.errors import ConfigError
from bot.wording import printable

LEVELS = {"DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARNING": logging.WARNING,
          "WARN": logging.WARNING, "ERROR": logging.ERROR, "CRITICAL": logging.CRITICAL}
CONTENT_ATTRIBUTE = "concierge_content"
# Libraries that log request and response bodies (questions, user ids) at DEBUG.
PAYLOAD_LOGGERS = ("slack_sdk", "slack_bolt", "urllib3")
# A logged value from outside (a question, a request path) is cut to this many characters.
CONTENT_LIMIT = 500
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
ON_WORDS = frozenset({"1", "true", "yes", "on"})
OFF_WORDS = frozenset({"0", "false", "no", "off", ""})


@dataclass(frozen=True, slots=True)
class LogSettings:
    level: int = logging.INFO
    """`LOG_LEVEL`: DEBUG, INFO (default), WARNING, ERROR or CRITICAL."""
    content: bool = False
    """`CONCIERGE_LOG_CONTENT`: also log question texts, Slack user ids and API bodies."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LogSettings:
        env = os.environ if env is None else env
        raw = env.get("LOG_LEVEL", "").strip()
        level = LEVELS.get(raw.upper() or "INFO")
        if level is None:
            raise ConfigError(f"must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, not "
                              f"{printable(raw, 40)!r}", setting="LOG_LEVEL")
        flag = env.get("CONCIERGE_LOG_CONTENT", "").strip().lower()
        if flag not in ON_WORDS | OFF_WORDS:
            raise ConfigError(f"must be on or off, not {printable(flag, 40)!r}",
                              setting="CONCIERGE_LOG_CONTENT")
        return cls(level, flag in ON_WORDS)


def content(**fields: object) -> dict[str, Any]:
    """`extra=` for a log call: personal fields, shown only with content logging on."""
    return {CONTENT_ATTRIBUTE: fields}


class OneLineFormatter(logging.Formatter):
    """Escapes control characters in the message; appends content fields when allowed."""

    def __init__(self, *, show_content: bool = False) -> None:
        super().__init__(FORMAT)
        self.show_content = show_content

    def formatMessage(self, record: logging.LogRecord) -> str:
        message = printable(record.getMessage())
        fields = getattr(record, CONTENT_ATTRIBUTE, None)
        if self.show_content and isinstance(fields, dict):
            message += "".join(f" {key}={printable(repr(value), CONTENT_LIMIT)}"
                               for key, value in fields.items())
        return self._style._fmt % {**record.__dict__, "message": message}

    def formatException(self, ei: Any) -> str:
        # A traceback keeps its lines, each indented: no line of it can pass for a record.
        return "\n".join("  " + printable(line) for line in super().formatException(ei)
                         .splitlines())

    def formatStack(self, stack_info: str) -> str:
        return "\n".join("  " + printable(line) for line in stack_info.splitlines())


def configure_logging(settings: LogSettings) -> None:
    """One handler on stderr for the whole process, formatted by `OneLineFormatter`."""
    handler = logging.StreamHandler()
    handler.setFormatter(OneLineFormatter(show_content=settings.content))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.level)
    for name in PAYLOAD_LOGGERS:
        logging.getLogger(name).setLevel(
            logging.NOTSET if settings.content else max(settings.level, logging.INFO))
