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

from bot.admin.desk import (
    AdminCommand,
    AdminDesk,
    AdminPolicy,
    help_view,
    parse_admin_command,
    refusal_view,
)
from bot.admin.reports import ReportView, Section
from bot.catalogue.models import Catalog
from bot.live import LiveCatalogue
from bot.logs import content
from bot.matching.matcher import Matcher
from bot.slack.admin_replies import report_messages
from bot.slack.buttons import ButtonKeys, ButtonRefused
from bot.slack.charts import Upload
from bot.slack.replies import (
    Message,
    ServiceDesk,
    chosen_message,
    decision_message,
    help_message,
    none_message,
    note_blocks,
)
from bot.slack.request_desk import RequestDesk
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
    requests: RequestDesk | None = None
    """Requests made in Slack (forms, owners' buttons); None: Request buttons are links only."""
    buttons: ButtonKeys = field(default_factory=ButtonKeys.ephemeral)
    """Ties each card's buttons to its question and asker (`bot.slack.buttons`)."""

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
                                              latency_ms=latency_ms,
                                              by_admin=self.admins.is_admin(user))
                       if self.recorder is not None else None)
        # What was asked and by whom only with CONCIERGE_LOG_CONTENT=on (bot.logs).
        log.info("question %s surface=%s decision=%s answer=%s confidence=%.3f ms=%.1f",
                 question_id if question_id is not None else "-", surface,
                 decision.kind.value, decision.offering.id if decision.offering else "-",
                 decision.confidence, latency_ms, extra=content(text=need, user=user))
        return decision_message(decision, matcher.catalog, self.service_desk,
                                self.buttons.card(question_id, user))

    def choose(self, value: str, *, user: str | None) -> Click:
        """A "Did you mean…" choice was clicked: that offering's card, recorded as chosen."""
        try:
            press = self.buttons.read(value, user)
        except ButtonRefused as refused:
            return _refusal("choice", refused)
        offering = self.catalog.get(press.offering_id)
        if offering is None:
            # The catalogue was reloaded between the question and the click.
            return Click(none_message(None, self.service_desk,
                                      why="That offering is no longer in the catalogue."))
        if self.recorder is not None:
            self.recorder.choice(press.question_id, offering.id)
        return Click(chosen_message(offering, self.catalog,
                                    self.buttons.card(press.question_id, user)))

    def none_fitted(self, value: str, *, user: str | None) -> Click:
        """"None of these" was clicked: an unmet need."""
        try:
            press = self.buttons.read(value, user)
        except ButtonRefused as refused:
            return _refusal("choice", refused)
        if self.recorder is not None:
            self.recorder.choice(press.question_id, None)
        log.info("unmet need: no suggestion fitted (question %s)", press.question_id)
        return Click(none_message(None, self.service_desk,
                                  why="None of the suggestions fitted."))

    def feedback(self, value: str, *, helpful: bool, user: str | None) -> Click | None:
        """Helpful / Not what I need, from the asker: recorded (None), a later click changing
        the rating; from anyone else, a refusal only they see."""
        try:
            press = self.buttons.read(value, user)
        except ButtonRefused as refused:
            return _refusal("feedback", refused)
        if self.recorder is not None:
            self.recorder.feedback(press.question_id, press.offering_id, helpful=helpful,
                                   user=user)
        log.info("feedback question=%s offering=%s helpful=%s", press.question_id,
                 press.offering_id, helpful)
        return None

    def request_clicked(self, offering_id: str, value: str, *, user: str | None) -> None:
        """The Request link of a card was opened (the browser does the rest). Anyone may
        open it; a click by the asker is tied to the question, anyone else's only counts
        for the offering the button names."""
        try:
            press = self.buttons.read(value, user)
            question_id, offering_id = press.question_id, press.offering_id
        except ButtonRefused:
            question_id = None
        if self.recorder is not None and offering_id in self.catalog:
            self.recorder.request_click(question_id, offering_id, user)

    def direct_message(self, need: str, *, user: str | None,
                       team: str | None = None) -> list[Message]:
        """A DM: an admin's subcommand (or slip) runs as with `/concierge`, in the DM, which
        only they see; anything else, from anyone, is a need."""
        command = parse_admin_command(need)
        if command is not None and command.name != "help" and self.admins.is_admin(user):
            return self.admin(command, user=user)
        return [self.reply(need, surface="dm", user=user, team=team)]

    def admin(self, command: AdminCommand, *, user: str | None,
              upload: Upload | None = None) -> list[Message]:
        """An admin subcommand's output, or a polite refusal for everyone else. `stats`
        also posts its chart through `upload`, and says where it went."""
        is_admin = self.admins.is_admin(user)
        if command.name == "help":
            general = help_message()
            if not is_admin:
                return [general]
            return [general, *report_messages(help_view(admin=True))]
        if not is_admin:
            admin_log.warning("refused /concierge %s: not an admin", command.name,
                              extra=content(user=user))
            return report_messages(refusal_view(command.name))
        admin_log.info("/concierge %s %s by an admin%s", command.name, command.days,
                       " (not a command: told what is wrong)" if command.problem else "",
                       extra=content(user=user))
        if self.desk is None:
            return [none_message(None, self.service_desk, why="Admin commands are off.")]
        cli = (command.name if command.name in ("stats", "gaps", "owners", "suggest",
                                                "requests")
               and command.problem is None else None)
        view = self.desk.run(command)
        if command.name == "stats" and command.problem is None and upload is not None:
            chart = self.desk.stats_chart(command.days)
            if chart is not None:
                view = ReportView(view.title, (*view.sections,
                                               Section("Chart", (upload(chart),))))
        return report_messages(view, command=f"{cli} --days {command.days}" if cli else None)


@dataclass(frozen=True, slots=True)
class Click:
    """What a button click shows: `message` in place of the card (`replace`), or, when the
    click is refused, a message only the clicker sees, the card left as it was."""

    message: Message
    replace: bool = True


REFUSALS = {
    "not_the_asker": "Only the person who asked can use these buttons. Ask me yourself (in a "
                     "direct message, or with `/concierge <what you need>`) and you get a "
                     "card of your own.",
    "malformed": "This button does not work: the card may be from an older version of "
                 "Concierge. Ask again and use the new card.",
}


def _refusal(kind: str, refused: ButtonRefused) -> Click:
    log.info("refused a %s click: %s", kind, refused.reason)
    text = REFUSALS[refused.reason]
    return Click(Message(text, tuple(note_blocks(text))), replace=False)


def register(app: App, concierge: Concierge) -> None:
    """Register every listener Concierge has."""
    from handlers import actions, commands, home, messages, requests

    messages.register(app, concierge)
    commands.register(app, concierge)
    actions.register(app, concierge)
    home.register(app, concierge)
    if concierge.requests is not None:
        requests.register(app, concierge.requests)
