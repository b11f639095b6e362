"""Posting the stats chart: a PNG in the admin's direct message with Concierge.

`/concierge stats` answers with an ephemeral message, which cannot carry a file; a file
shared in the channel the command was typed in would show the stats to everyone there.
So the chart goes to the admin's DM with the app (`conversations.open`, scope `im:write`),
uploaded with Slack's external upload flow, which `WebClient.files_upload_v2` runs:
`files.getUploadURLExternal` → the bytes POSTed to the URL it returns →
`files.completeUploadExternal` (scope `files:write`), which shares it in the DM with the
chart's title as the message and its description as alt text.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.admin.chart import Chart
from bot.logs import content

log = logging.getLogger("concierge.admin")

SENT = "Sent to your direct messages with Concierge."
Upload = Callable[[Chart], str]
"""Posts a chart; returns one line saying where it went or why it did not."""


def chart_uploader(client: WebClient, user: str | None) -> Upload:
    """Posts a chart to `user`'s DM with the app through `client`."""

    def upload(chart: Chart) -> str:
        if chart.png is None:
            return chart.note or "No chart."
        if not user:
            return "No chart: Slack did not say who asked."
        try:
            opened = client.conversations_open(users=user)
            channel = str((opened.get("channel") or {}).get("id") or "")
            client.files_upload_v2(channel=channel, file=chart.png, filename=chart.filename,
                                   title=chart.title, alt_txt=chart.alt,
                                   initial_comment=chart.title)
        except SlackApiError as exc:
            error = str(exc.response.get("error") or exc.response.status_code)
            needed = exc.response.get("needed")
            log.warning("could not post the stats chart: %s", error, extra=content(user=user))
            scope = (f" The app needs the `{needed}` scope: reinstall it from manifest.yaml."
                     if needed else "")
            return f"Could not post the chart: Slack answered `{error}`.{scope}"
        except (SlackClientError, OSError) as exc:
            log.warning("could not post the stats chart: %s", exc, extra=content(user=user))
            return f"Could not post the chart ({exc})."
        return SENT

    return upload
