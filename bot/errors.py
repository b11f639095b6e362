"""One exception tree for the whole of Concierge.

    ConciergeError
    ├── ConfigError           a setting (environment variable, flag) is missing or malformed
    ├── KnowledgeError        the knowledge directory has errors; carries every Problem found
    ├── EmbeddingUnavailable  semantic mode was asked for but the model or its runtime is missing
    ├── StoreUnavailable      the database cannot be reached, or its schema is not up to date
    ├── EditError             suggested needs cannot be added to a knowledge file in place
    └── ChartUnavailable      a chart was asked for but the plotting library is not installed

Exceptions carry their context as keyword-only fields, so callers can render
them without parsing messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.catalogue.models import Problem


class ConciergeError(Exception):
    """Base class: every error Concierge raises on purpose derives from it."""


class ConfigError(ConciergeError):
    """A setting is missing or malformed; `setting` names it (e.g. `SLACK_BOT_TOKEN`)."""

    def __init__(self, message: str, *, setting: str) -> None:
        super().__init__(f"{setting}: {message}")
        self.setting = setting


class KnowledgeError(ConciergeError):
    """The knowledge directory could not be loaded; `problems` lists every error and warning."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        errors = [p for p in self.problems if p.is_error]
        first = errors[0].render() if errors else "unknown problem"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(f"{first}{more}")


class EmbeddingUnavailable(ConciergeError):
    """Semantic matching was requested but the model or its runtime cannot be loaded."""

    def __init__(self, message: str, *, model: str) -> None:
        super().__init__(f"{model}: {message}")
        self.model = model


class StoreUnavailable(ConciergeError):
    """The database cannot be read (down, missing, or not migrated); `url` names it."""

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(f"{url}: {message}")
        self.url = url


class EditError(ConciergeError):
    """Needs cannot be added to `offering` in the knowledge file `path` in place (near `line`)."""

    def __init__(self, message: str, *, path: str, line: int, offering: str) -> None:
        super().__init__(f"{path}:{line}: {offering}: {message}")
        self.path = path
        self.line = line
        self.offering = offering


class ChartUnavailable(ConciergeError):
    """A chart was asked for but `package` (the `chart` extra) is not installed."""

    def __init__(self, message: str, *, package: str) -> None:
        super().__init__(message)
        self.package = package
