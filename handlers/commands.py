"""`/concierge <need>`: an answer only the caller sees; no text shows the help."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, Respond

from bot.replies import slack_to_plain
from handlers import Concierge

COMMAND = "/concierge"


def register(app: App, concierge: Concierge) -> None:
    def answer_command(ack: Ack, command: dict[str, Any], respond: Respond) -> None:
        ack()
        need = slack_to_plain(command.get("text") or "")
        reply = concierge.reply(need, surface="command", user=command.get("user_id"))
        respond(response_type="ephemeral", **reply.payload())

    app.command(COMMAND)(answer_command)
