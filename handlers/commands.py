"""`/concierge <need>`: an answer only the caller sees; no text shows the help.

`/concierge <subcommand>` (stats, gaps, owners, suggest, reload, check, help) is for
admins; anyone else gets a polite refusal. Admin output can take several messages; `stats`
also posts a chart to the admin's DM with the app.
"""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot.admin.desk import parse_admin_command
from bot.slack.charts import chart_uploader
from bot.slack.replies import slack_to_plain
from handlers import Concierge

COMMAND = "/concierge"


def register(app: App, concierge: Concierge) -> None:
    def answer_command(ack: Ack, command: dict[str, Any], respond: Respond,
                       client: WebClient) -> None:
        ack()
        text = slack_to_plain(command.get("text") or "")
        user = command.get("user_id")
        subcommand = parse_admin_command(text)
        if subcommand is None:
            reply = concierge.reply(text, surface="command", user=user,
                                    team=command.get("team_id"))
            respond(response_type="ephemeral", **reply.payload())
            return
        for message in concierge.admin(subcommand, user=user,
                                       upload=chart_uploader(client, user)):
            respond(response_type="ephemeral", replace_original=False, **message.payload())

    app.command(COMMAND)(answer_command)
