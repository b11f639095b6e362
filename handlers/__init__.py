"""Slack listeners, one module per listener type (after slack-samples/bolt-python-starter-template).

Each module has `register(app, concierge)` and registers plain callbacks with
`app.event(...)(callback)`, so callbacks never import the app. A callback acks
first (Bolt acks events itself), asks the core once, then replies.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from slack_bolt import App

from bot.matcher import Matcher
from bot.models import Catalog, DecisionKind
from bot.replies import Message, ServiceDesk, decision_message, help_message

log = logging.getLogger("concierge.questions")

HELP_WORDS = frozenset({"help", "?", "hi", "hello", "hallo"})


@dataclass(frozen=True)
class Concierge:
    """What the listeners need from the core: one matcher (and its catalogue) and settings."""

    matcher: Matcher
    service_desk: ServiceDesk = field(default_factory=ServiceDesk)

    @property
    def catalog(self) -> Catalog:
        return self.matcher.catalog

    def reply(self, need: str, *, surface: str, user: str | None = None) -> Message:
        """The message answering `need` (plain text), or the help text when there is none."""
        if not need.strip() or need.strip().lower() in HELP_WORDS:
            return help_message()
        decision = self.matcher.decide(need)
        # The admin issue turns these log lines into rows; until then the log is the record.
        log.info("question surface=%s user=%s decision=%s answer=%s confidence=%.3f",
                 surface, user, decision.kind.value,
                 decision.offering.id if decision.offering else "-", decision.confidence)
        if decision.kind is DecisionKind.NONE:
            log.info("unmet need surface=%s user=%s: %s", surface, user, need)
        return decision_message(decision, self.catalog, self.service_desk)


def register(app: App, concierge: Concierge) -> None:
    """Register every listener Concierge has."""
    from handlers import actions, commands, home, messages

    messages.register(app, concierge)
    commands.register(app, concierge)
    actions.register(app, concierge)
    home.register(app, concierge)
