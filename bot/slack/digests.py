"""Sending the owner digests: one Block Kit message per owner team and recipient, exactly
once per period across workers and hosts.

    every worker, every TICK_SECONDS (its own thread)   `concierge digest --send`
            │ the schedule's slot is due (CONCIERGE_DIGEST)      │ the latest slot, however late
            ▼                                                    ▼
    claim the period (or take it over from a silent worker; `bot.store.digests`)
            │ lost: another worker sends it, or it was sent    ─▶ nothing to do
            ▼
    the digests of the period (`bot.admin.digest`), empty ones left out
            ▼ per team, per recipient (a usergroup: each member, at most MAX_GROUP_DMS)
    already sent or failed ─▶ skipped
    in doubt (`sending`: a worker died between writing and settling) ─▶ look in the DM
            for the message (its metadata names period and team): there ─▶ sent;
            not there, or a channel Concierge may not read ─▶ posted again (once more)
    new ─▶ a DM is opened first (its id is stored before the post) ─▶ row `sending` ─▶
            chat.postMessage with metadata ─▶ `sent` | `failed` (Slack refused: no such
            channel, not in it, missing scope) | tried again next tick (429 after the
            client's retries, 5xx, network), `failed` after MAX_ATTEMPTS
    all settled ─▶ the period is finished; past the grace, what is left is given up

Rate limits: the Web API client waits out 429s (`Retry-After`) itself; messages go one
after the other on one thread, so a period of many owners is sent at Slack's pace rather
than in a burst. Exactly once holds for DMs; for a channel message in doubt Concierge
cannot read the channel (no channels:history scope), so that one is posted again: at
least once. Empty digests are never sent.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.models.blocks import Block, ContextBlock, MarkdownTextObject
from sqlalchemy.exc import SQLAlchemyError

from bot.admin.digest import (
    Destination,
    FindingsSource,
    TeamDigest,
    build_digests,
    quality_findings,
)
from bot.admin.reports import load_activity
from bot.admin.schedule import DigestSettings, Schedule
from bot.admin.suggest import suggest
from bot.logs import content
from bot.matching.matcher import Matcher
from bot.slack.admin_replies import report_blocks
from bot.slack.history import find_message, metadata_matches
from bot.slack.replies import MESSAGE_BLOCK_LIMIT, Message, escape
from bot.store.database import Store
from bot.store.digests import FAILED, SENDING, SENT, DeliveryRow, DigestLog, team_key
from bot.store.tables import utcnow
from bot.store.takeover import InSlack

log = logging.getLogger("concierge.digest")

DIGEST_EVENT_TYPE = "concierge_digest"
TICK_SECONDS = 60.0
# A usergroup of more members than this gets no DMs: name a channel for it instead.
MAX_GROUP_DMS = 50
MAX_ATTEMPTS = 3
SUGGEST_DAYS = 30
# A lookup reads from a little before the delivery was written: clocks of two hosts differ.
LOOKUP_SLACK = timedelta(minutes=1)
# Slack's answers that another attempt will not change.
PASSING_ERRORS = frozenset({"ratelimited", "internal_error", "fatal_error",
                            "service_unavailable", "request_timeout"})
_DM = re.compile(r"D[A-Z0-9]{2,}")
_PERSON = re.compile(r"[UW][A-Z0-9]{2,}")


def digest_message(digest: TeamDigest, schedule: Schedule | None = None) -> Message:
    """The digest as one message (at most Slack's 50 blocks; what does not fit is named)."""
    blocks: list[Block] = report_blocks(digest.view())
    sent_how = (f"Sent {schedule.describe()} (CONCIERGE_DIGEST)" if schedule
                else "Sent by `concierge digest --send`")
    footer = ContextBlock(elements=[MarkdownTextObject(
        text=f"{sent_how} to the owner contacts of {escape(digest.team)} in the catalogue.")])
    if len(blocks) + 1 > MESSAGE_BLOCK_LIMIT:
        kept = blocks[:MESSAGE_BLOCK_LIMIT - 2]
        left = len(blocks) - len(kept)
        blocks = [*kept, ContextBlock(elements=[MarkdownTextObject(
            text=f":warning: {left} more parts did not fit in one message: `concierge digest "
                 f"--dry-run --owner \"{escape(digest.team)}\"` shows them all.")])]
    counts = ((sum(o.questions for o in digest.offerings), "question", "questions"),
              (len(digest.gaps), "unmet need nearby", "unmet needs nearby"),
              (sum(len(o.phrases) for o in digest.suggestions), "need to add", "needs to add"))
    text = f"Concierge digest for {digest.team}: " + ", ".join(
        f"{n} {one if n == 1 else many}" for n, one, many in counts)
    return Message(escape(text), (*blocks, footer))


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one team's digest for one recipient (or of a contact skipped)."""

    team: str
    recipient: str
    state: str
    """sent, failed, in doubt (posted again), not yet (tried again at the next tick),
    skipped, or unchanged from an earlier attempt (sent / failed before)."""
    detail: str = ""

    def line(self) -> str:
        detail = f": {self.detail}" if self.detail else ""
        return f"{self.team} → {self.recipient}: {self.state}{detail}"


@dataclass(frozen=True, slots=True)
class RunSummary:
    """One run over a period: what it did, for logs and `concierge digest --send`."""

    period: str
    status: str
    """sent (finished now), already sent, busy (another worker sends it), unfinished."""
    outcomes: tuple[Outcome, ...] = ()
    empty_teams: tuple[str, ...] = ()
    detail: str = ""

    @property
    def failed(self) -> tuple[Outcome, ...]:
        return tuple(o for o in self.outcomes if o.state == FAILED)

    def log(self) -> None:
        """Into the log: channels by name, people only with content logging on."""
        counts = ", ".join(f"{n} {state}" for state, n in
                           sorted(Counter(o.state for o in self.outcomes).items()))
        log.info("digest %s: %s (%s)", self.period, self.status, counts or "nothing to send")
        for o in self.outcomes:
            person = bool(_PERSON.fullmatch(o.recipient))
            log.info("digest %s: %s → %s: %s%s", self.period, o.team,
                     "a direct message" if person else o.recipient, o.state,
                     f": {o.detail}" if o.detail else "",
                     extra=content(recipient=o.recipient) if person else None)

    def lines(self) -> list[str]:
        head = f"digest {self.period}: {self.status}"
        out = [head + (f" ({self.detail})" if self.detail else "")]
        out += [f"  {o.line()}" for o in self.outcomes]
        if self.empty_teams:
            out.append(f"  nothing to report, not sent: {', '.join(self.empty_teams)}")
        return out


@dataclass
class _Recipient:
    """A resolved place to post a team's digest: `recipient` as stored (U…, C…, #name),
    `channel` as posted to (a DM's D… once opened)."""

    recipient: str
    channel: str
    dm: bool


@dataclass
class DigestSender:
    """Sends the digests of due periods through `client`, as worker `worker_id`."""

    store: Store
    client: WebClient
    matcher: Callable[[], Matcher]
    """The catalogue and matcher to describe (the worker's live one)."""
    settings: DigestSettings
    worker_id: str
    stale_after: timedelta
    findings: FindingsSource = quality_findings
    clock: Callable[[], datetime] = utcnow
    log: DigestLog = field(init=False)
    _db_failing: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self.log = DigestLog(self.store)

    # --- entry points -------------------------------------------------------------------

    def tick(self) -> RunSummary | None:
        """The scheduler's beat: send the due period if it is not sent yet. None when no
        period is due (or the schedule is off)."""
        schedule = self.settings.schedule
        if schedule is None:
            return None
        now = self.clock()
        slot = schedule.due(now)
        if slot is None:
            return None
        try:
            summary = self._run(schedule, slot, give_up_at=slot + schedule.grace)
        except SQLAlchemyError as exc:
            # The next tick tries again; the claim and the deliveries keep what was done.
            if not self._db_failing:
                log.warning("digest %s: database unavailable (%s); trying again every "
                            "%.0f s", schedule.key(slot), _error(exc), TICK_SECONDS)
            self._db_failing = True
            return None
        self._db_failing = False
        if summary.status not in ("already sent", "busy"):
            summary.log()
        return summary

    def send(self) -> RunSummary:
        """`concierge digest --send`: the latest period of the cadence, however late, if it
        has not been sent."""
        schedule = self.settings.cadence
        return self._run(schedule, schedule.latest_slot(self.clock()), give_up_at=None)

    # --- one period ---------------------------------------------------------------------

    def _run(self, schedule: Schedule, slot: datetime,
             give_up_at: datetime | None) -> RunSummary:
        period = schedule.key(slot)
        run = self.log.run(period)
        if run is not None and run.finished_at is not None:
            return RunSummary(period, "already sent", detail=f"finished "
                              f"{run.finished_at:%Y-%m-%d %H:%M} UTC by {run.owner}")
        if run is None and not self.log.claim(period, self.worker_id, now=self.clock()):
            run = self.log.run(period)
        if run is not None and run.owner != self.worker_id:
            if run.finished_at is not None:
                return RunSummary(period, "already sent")
            if not self.log.take_over(period, from_owner=run.owner, to_owner=self.worker_id,
                                      stale_after=self.stale_after, now=self.clock()):
                return RunSummary(period, "busy", detail=f"worker {run.owner} is sending it")
            log.warning("digest %s: taking over from silent worker %s", period, run.owner)
        self.log.prune(now=self.clock())
        digests = self._digests(schedule, slot)
        done = {(d.team_key, d.recipient): d for d in self.log.deliveries(period)}
        outcomes: list[Outcome] = []
        for digest in digests:
            if digest.empty:
                continue
            message = digest_message(digest, self.settings.schedule)
            for skipped in digest.skipped:
                outcomes.append(Outcome(digest.team, skipped.contact or "-", "skipped",
                                        skipped.why))
            for target in self._recipients(digest.destinations, digest.team, outcomes):
                outcomes.append(self._deliver(period, digest, message, target,
                                              done.get((team_key(digest.team),
                                                        target.recipient))))
        waiting = [o for o in outcomes if o.state == "not yet"]
        late = give_up_at is not None and self.clock() > give_up_at
        if waiting and late:
            for o in waiting:
                self.log.settle(period, self.worker_id, team=o.team, recipient=o.recipient,
                                state=FAILED, error=f"given up after the grace ({o.detail})")
            outcomes = [Outcome(o.team, o.recipient, FAILED, "given up: " + o.detail)
                        if o.state == "not yet" else o for o in outcomes]
        unfinished = bool(waiting) and not late
        if not unfinished:
            self.log.finish(period, self.worker_id, now=self.clock())
        return RunSummary(period, "unfinished" if unfinished else "sent", tuple(outcomes),
                          tuple(d.team for d in digests if d.empty))

    def _digests(self, schedule: Schedule, slot: datetime) -> list[TeamDigest]:
        matcher = self.matcher()
        week = load_activity(self.store, schedule.days, now=slot)
        learnt = suggest(load_activity(self.store, SUGGEST_DAYS, now=slot), matcher)
        return build_digests(week, matcher.catalog, suggestions=learnt,
                             findings=self.findings(matcher),
                             group_channels=self.settings.group_channels)

    def _recipients(self, destinations: Sequence[Destination], team: str,
                    outcomes: list[Outcome]) -> Iterable[_Recipient]:
        seen: set[str] = set()
        for destination in destinations:
            if destination.kind == "usergroup":
                members = self._members(destination.target, team, outcomes)
                targets = [Destination("dm", m) for m in members]
            else:
                targets = [destination]
            for target in targets:
                if target.target in seen:
                    continue  # a contact and a group member at once: one message
                seen.add(target.target)
                yield _Recipient(target.target, target.target, target.kind == "dm")

    def _members(self, group: str, team: str, outcomes: list[Outcome]) -> list[str]:
        try:
            response = self.client.usergroups_users_list(usergroup=group)
        except (SlackApiError, SlackClientError, OSError) as exc:
            outcomes.append(Outcome(team, group, "skipped", f"could not list the usergroup's "
                                    f"members ({_error(exc)}); name a channel for it in "
                                    "CONCIERGE_DIGEST_CHANNELS"))
            return []
        members = [str(u) for u in response.get("users") or []]
        if len(members) > MAX_GROUP_DMS:
            outcomes.append(Outcome(team, group, "skipped", f"{len(members)} members, over "
                                    f"{MAX_GROUP_DMS} DMs; name a channel for it in "
                                    "CONCIERGE_DIGEST_CHANNELS"))
            return []
        if not members:
            outcomes.append(Outcome(team, group, "skipped", "the usergroup has no members"))
        return members

    # --- one message --------------------------------------------------------------------

    def _deliver(self, period: str, digest: TeamDigest, message: Message, target: _Recipient,
                 row: DeliveryRow | None) -> Outcome:
        team, recipient = digest.team, target.recipient
        if row is not None and row.state in (SENT, FAILED):
            return Outcome(team, recipient, f"{row.state} before",
                           row.error or (f"ts {row.ts}" if row.ts else ""))
        if row is not None:  # sending: a worker died mid-post, or an attempt failed
            if row.attempts >= MAX_ATTEMPTS:
                self.log.settle(period, self.worker_id, team=team, recipient=recipient,
                                state=FAILED, error=row.error or "too many attempts")
                return Outcome(team, recipient, FAILED, row.error or "too many attempts")
            found = self._look_up(period, team, row)
            if found is InSlack.YES:
                self.log.settle(period, self.worker_id, team=team, recipient=recipient,
                                state=SENT, error=None)
                return Outcome(team, recipient, SENT, "found in Slack, not sent again")
            if found is InSlack.LOOKUP_FAILED:
                return Outcome(team, recipient, "not yet", "could not look it up in Slack")
            channel = row.channel or ""
            if not channel or (target.dm and not _DM.fullmatch(channel)):
                try:  # the DM could not be opened last time: try again
                    channel = self._open(target)
                except _Failure as failure:
                    return self._failed(period, team, recipient, failure, retry=True)
            retry = True
        else:
            try:
                channel = self._open(target)
            except _Failure as failure:
                if not self.log.start(period, self.worker_id, team=team, recipient=recipient,
                                      channel=None, now=self.clock()):
                    return Outcome(team, recipient, "skipped", "the period is no longer ours")
                return self._failed(period, team, recipient, failure)
            if not self.log.start(period, self.worker_id, team=team, recipient=recipient,
                                  channel=channel, now=self.clock()):
                return Outcome(team, recipient, "skipped", "the period is no longer ours")
            retry = False
        try:
            response = self.client.chat_postMessage(
                channel=channel, unfurl_links=False, unfurl_media=False,
                metadata={"event_type": DIGEST_EVENT_TYPE,
                          "event_payload": {"period": period, "team": team_key(team)}},
                **message.payload())
        except (SlackApiError, SlackClientError, OSError) as exc:
            return self._failed(period, team, recipient, _Failure.of(exc), retry=retry)
        posted_in = str(response.get("channel") or channel)
        ts = str(response.get("ts") or "")
        self.log.settle(period, self.worker_id, team=team, recipient=recipient, state=SENT,
                        channel=posted_in, ts=ts or None, error=None, now=self.clock())
        return Outcome(team, recipient, SENT, "posted again (in doubt)" if retry else "")

    def _open(self, target: _Recipient) -> str:
        """The conversation to post to: a DM is opened first, so its id is known (and
        stored) before the post and a lookup can find the message later."""
        if not target.dm:
            return target.channel
        try:
            opened = self.client.conversations_open(users=target.recipient)
        except SlackApiError as exc:
            if exc.response.get("error") == "missing_scope":
                # Without im:write: post to the user id (Slack delivers to the app's DM),
                # which a lookup cannot read back.
                return target.recipient
            raise _Failure.of(exc) from exc
        except (SlackClientError, OSError) as exc:
            raise _Failure.of(exc) from exc
        return str((opened.get("channel") or {}).get("id") or target.recipient)

    def _look_up(self, period: str, team: str, row: DeliveryRow) -> InSlack:
        if not (row.channel and _DM.fullmatch(row.channel)):
            return InSlack.CANNOT_TELL  # a channel: no history scope to read it with
        oldest = f"{(row.started_at - LOOKUP_SLACK).timestamp():.6f}"
        payload = {"period": period, "team": team_key(team)}
        return find_message(
            self.client, row.channel,
            lambda m: metadata_matches(m, DIGEST_EVENT_TYPE, payload), oldest=oldest,
            what=f"digest {period} for {team}")

    def _failed(self, period: str, team: str, recipient: str, failure: _Failure, *,
                retry: bool = False) -> Outcome:
        if failure.passing:
            self.log.settle(period, self.worker_id, team=team, recipient=recipient,
                            state=SENDING, error=failure.error, retry=retry)
            return Outcome(team, recipient, "not yet", failure.error)
        self.log.settle(period, self.worker_id, team=team, recipient=recipient, state=FAILED,
                        error=failure.error)
        log.warning("digest %s for %s failed: %s", period, team, failure.error,
                    extra=content(recipient=recipient))
        return Outcome(team, recipient, FAILED, failure.error)


class _Failure(Exception):
    """A Web API call that did not work: `passing` when trying again later may help."""

    def __init__(self, error: str, *, passing: bool) -> None:
        super().__init__(error)
        self.error = error
        self.passing = passing

    @classmethod
    def of(cls, exc: BaseException) -> _Failure:
        if isinstance(exc, SlackApiError):
            error = str(exc.response.get("error") or exc.response.status_code)
            needed = exc.response.get("needed")
            if needed:
                error += f" (needs the {needed} scope)"
            passing = (exc.response.status_code == 429 or exc.response.status_code >= 500
                       or error in PASSING_ERRORS)
            return cls(error, passing=passing)
        return cls(_error(exc), passing=True)


def _error(exc: BaseException) -> str:
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error") or exc.response.status_code)
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__

