"""Slack listeners, one module per listener type (after slack-samples/bolt-python-starter-template).

Each module has `register(app, concierge)` and registers plain callbacks with
`app.event(...)(callback)`, so callbacks never import the app. A callback acks
first (Bolt acks events itself), makes one call on `Concierge`, then replies.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from slack_bolt import App

from bot.admin.desk import AdminCommand, AdminDesk, AdminPolicy, help_view, refusal_view
from bot.catalogue.models import Catalog, DecisionKind
from bot.live import LiveCatalogue
from bot.matching.matcher import Matcher
from bot.slack.admin_replies import report_messages
from bot.slack.replies import (
    Message,
    ServiceDesk,
    chosen_message,
    decision_message,
    help_message,
    none_message,
    parse_button_value,
)
from bot.store.recorder import Recorder

log = logging.getLogger("concierge.questions")
admin_log = logging.getLogger("concierge.admin")

HELP_WORDS = frozenset({"help", "?", "hi", "hello", "hallo"})


@dataclass(frozen=True)
class Concierge:
    """What the listeners need from the core: the live catalogue, the recorder, the admin
    desk and settings. Every listener makes one call here."""

    live: LiveCatalogue
    service_desk: ServiceDesk = field(default_factory=ServiceDesk)
    recorder: Recorder | None = None
    admins: AdminPolicy = field(default_factory=AdminPolicy)
    desk: AdminDesk | None = None

    @property
    def matcher(self) -> Matcher:
        return self.live.matcher

    @property
    def catalog(self) -> Catalog:
        return self.live.catalog

    def reply(self, need: str, *, surface: str, user: str | None = None,
              team: str | None = None) -> Message:
        """The message answering `need` (plain text), or the help text when there is none.

        The question is recorded (best-effort) and its record id goes into the buttons.
        """
        if not need.strip() or need.strip().lower() in HELP_WORDS:
            return help_message()
        matcher = self.matcher  # one catalogue for the whole answer, even during a reload
        started = time.perf_counter()
        decision = matcher.decide(need)
        latency_ms = (time.perf_counter() - started) * 1000
        question_id = (self.recorder.question(decision, surface=surface, user=user, team=team,
                                              latency_ms=latency_ms)
                       if self.recorder is not None else None)
        log.info("question %s surface=%s decision=%s answer=%s confidence=%.3f ms=%.1f",
                 question_id if question_id is not None else "-", surface,
                 decision.kind.value, decision.offering.id if decision.offering else "-",
                 decision.confidence, latency_ms)
        if decision.kind is DecisionKind.NONE:
            log.info("unmet need surface=%s: %s", surface, need)
        return decision_message(decision, matcher.catalog, self.service_desk, question_id)

    def choose(self, value: str) -> Message:
        """A "Did you mean…" choice was clicked: that offering's card, recorded as chosen."""
        offering_id, question_id = parse_button_value(value)
        offering = self.catalog.get(offering_id)
        if offering is None:
            # The catalogue was reloaded between the question and the click.
            return none_message(None, self.service_desk,
                                why="That offering is no longer in the catalogue.")
        if self.recorder is not None:
            self.recorder.choice(question_id, offering.id)
        return chosen_message(offering, self.catalog, question_id)

    def none_fitted(self, value: str) -> Message:
        """"None of these" was clicked: an unmet need."""
        _, question_id = parse_button_value(value)
        if self.recorder is not None:
            self.recorder.choice(question_id, None)
        log.info("unmet need: no suggestion fitted (question %s)", question_id)
        return none_message(None, self.service_desk, why="None of the suggestions fitted.")

    def feedback(self, value: str, *, helpful: bool, user: str | None) -> None:
        offering_id, question_id = parse_button_value(value)
        if self.recorder is not None:
            self.recorder.feedback(question_id, offering_id, helpful=helpful, user=user)
        log.info("feedback question=%s offering=%s helpful=%s", question_id, offering_id,
                 helpful)

    def request_clicked(self, offering_id: str, value: str, *, user: str | None) -> None:
        """The Request link of a card was opened (the browser does the rest)."""
        from_value, question_id = parse_button_value(value)
        offering_id = from_value or offering_id
        if self.recorder is not None and offering_id:
            self.recorder.request_click(question_id, offering_id, user)

    def admin(self, command: AdminCommand, *, user: str | None) -> list[Message]:
        """An admin subcommand's output, or a polite refusal for everyone else."""
        is_admin = self.admins.is_admin(user)
        if command.name == "help":
            general = help_message()
            if not is_admin:
                return [general]
            return [general, *report_messages(help_view(admin=True))]
        if not is_admin:
            admin_log.warning("refused /concierge %s for %s: not an admin", command.name, user)
            return report_messages(refusal_view(command.name))
        admin_log.info("/concierge %s %s by %s", command.name, command.days, user)
        if self.desk is None:
            return [none_message(None, self.service_desk, why="Admin commands are off.")]
        cli = command.name if command.name in ("stats", "gaps", "owners", "suggest") else None
        return report_messages(self.desk.run(command),
                               command=f"{cli} --days {command.days}" if cli else None)


def register(app: App, concierge: Concierge) -> None:
    """Register every listener Concierge has."""
    from handlers import actions, commands, home, messages

    messages.register(app, concierge)
    commands.register(app, concierge)
    actions.register(app, concierge)
    home.register(app, concierge)
