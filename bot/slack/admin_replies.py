"""Admin reports as Slack messages: Block Kit sections within Slack's limits.

A report's lines are escaped and `verbatim` (gaps quote what people typed: Slack must not
turn an `@here` or a URL in them into a mention or a link), then packed into section texts
of at most 3000
characters (a longer line is split, never cut) and the sections into messages
of at most 50 blocks. A `response_url` takes at most five messages; when a
report needs more, the fifth says how much is missing and where to read it all
(`concierge <report> --json`), so nothing is dropped without saying so.
"""

from __future__ import annotations

from slack_sdk.models.blocks import (
    Block,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from bot.admin.reports import ReportView
from bot.slack.replies import (
    HEADER_TEXT_LIMIT,
    MESSAGE_BLOCK_LIMIT,
    SECTION_TEXT_LIMIT,
    Message,
    escape,
    pack_lines,
)

# Slack accepts five messages through one response_url.
RESPONSE_URL_MESSAGES = 5


def report_blocks(view: ReportView) -> list[Block]:
    """Every block of the report, in order, before splitting into messages."""
    blocks: list[Block] = []
    if len(view.title) <= HEADER_TEXT_LIMIT:
        blocks.append(HeaderBlock(text=PlainTextObject(text=view.title, emoji=False)))
    else:
        blocks += [SectionBlock(text=MarkdownTextObject(text=t, verbatim=True))
                   for t in pack_lines([f"*{escape(view.title)}*"])]
    for section in view.sections:
        if section.preformatted:
            # A code block per piece, so that each piece stays one that can be pasted.
            blocks.append(SectionBlock(text=MarkdownTextObject(
                text=f"*{escape(section.heading)}*")))
            blocks += [SectionBlock(text=MarkdownTextObject(text=f"```{t}```"))
                       for t in pack_lines((escape(line) for line in section.lines),
                                           SECTION_TEXT_LIMIT - 2 * len("```"))]
            continue
        lines = [f"*{escape(section.heading)}*", *(escape(line) for line in section.lines)]
        blocks += [SectionBlock(text=MarkdownTextObject(text=t, verbatim=True))
                   for t in pack_lines(lines)]
    return blocks


def report_messages(view: ReportView, *, command: str | None = None,
                    max_messages: int = RESPONSE_URL_MESSAGES) -> list[Message]:
    """The report as one or more messages; `command` names the CLI equivalent for the rest."""
    blocks = report_blocks(view)
    per_message = MESSAGE_BLOCK_LIMIT - 1  # room for a "part n of m" context line
    chunks = [blocks[i:i + per_message] for i in range(0, len(blocks), per_message)] or [[]]
    shown = chunks[:max_messages]
    if len(chunks) > max_messages:
        # The last message gives up one block to say what is missing.
        last = shown[-1]
        left = sum(len(c) for c in chunks[max_messages:]) + 1
        where = (f" Run `concierge {command} --json` for the whole report."
                 if command else "")
        shown[-1] = [*last[:-1], _note(
            f":warning: {left} more parts of this report do not fit in Slack.{where}")]
    messages = []
    for n, chunk in enumerate(shown, start=1):
        extra = ([_note(f"Part {n} of {len(shown)}")] if len(shown) > 1 else [])
        text = view.title if n == 1 else f"{view.title} (part {n} of {len(shown)})"
        messages.append(Message(escape(text), (*chunk, *extra)))
    return messages


def _note(text: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=text)])
