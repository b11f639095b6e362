"""Owner digests, exactly once per period, in the database every worker and host shares.

    a worker's digest tick (or `concierge digest --send`), for the period's slot:
      claim     INSERT digest_runs(period, owner = me)          the primary key is the lock:
                                                                one claimer on any host
      or take   UPDATE … SET owner = me WHERE period = ? AND owner = <old> AND finished_at
      over      IS NULL AND <old> has not beaten for stale_after (one winner, as for events)
      then, per owner team and recipient:
        start   INSERT digest_deliveries(…, state = 'sending')  before the post: a worker
                                                                that dies now leaves it in
                                                                doubt, not forgotten
        settle  UPDATE … state = 'sent' (channel, ts) | 'failed' (error) | attempts + 1
      finish    UPDATE digest_runs SET finished_at = now        nothing more for this period

Why it holds up:
- Liveness is the heartbeat `bot.store.takeover` already writes for every serving worker
  (and `concierge digest --send` writes for itself while it runs): a worker waiting out
  Slack's rate limits is slow, not dead, and keeps its period. A claim younger than
  stale_after is never taken over: the claim itself showed its worker alive.
- Every write after the claim names the run's owner, so a worker that was judged dead and
  comes back cannot settle or finish what its successor now runs.
- A restart in the middle of a period leaves its run unfinished under a silent owner: the
  next tick of any worker (the restarted one included, with its new id) takes it over and
  sends only what has no `sent` or `failed` row; a `sending` row is looked up in Slack
  first (`bot.slack.digests`).
No Slack imports: what a message is, is the sender's business; here are only rows.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, exists, insert, select, update
from sqlalchemy.exc import IntegrityError

from bot.store.database import Store
from bot.store.tables import (
    ERROR_LENGTH,
    TEAM_KEY_LENGTH,
    DigestDelivery,
    DigestRun,
    WorkerHeartbeat,
    utcnow,
)

SENDING = "sending"
SENT = "sent"
FAILED = "failed"
# Past this, periods and their deliveries are forgotten (they only guard against resending).
KEEP_RUNS = timedelta(days=90)


def team_key(team: str) -> str:
    """The fixed-length key of an owner team's name (names are free text)."""
    return hashlib.sha256(team.encode("utf-8")).hexdigest()[:TEAM_KEY_LENGTH]


@dataclass(frozen=True, slots=True)
class RunRow:
    period: str
    owner: str
    claimed_at: datetime
    finished_at: datetime | None
    takeovers: int


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    team_key: str
    recipient: str
    team: str
    state: str
    channel: str | None
    ts: str | None
    attempts: int
    error: str | None
    started_at: datetime


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class DigestLog:
    """The digest rows of one database."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def run(self, period: str) -> RunRow | None:
        with self.store.engine.connect() as conn:
            row = conn.execute(select(DigestRun).where(DigestRun.period == period)).first()
        if row is None:
            return None
        return RunRow(row.period, row.owner, _aware(row.claimed_at),
                      _aware(row.finished_at) if row.finished_at else None,
                      int(row.takeovers))

    def claim(self, period: str, owner: str, *, now: datetime | None = None) -> bool:
        """True for the one caller, on any host, that claims `period` first."""
        try:
            with self.store.engine.begin() as conn:
                conn.execute(insert(DigestRun).values(
                    period=period, owner=owner, claimed_at=now or utcnow(), takeovers=0))
        except IntegrityError:
            return False
        return True

    def take_over(self, period: str, *, from_owner: str, to_owner: str,
                  stale_after: timedelta, now: datetime | None = None) -> bool:
        """Move an unfinished period from a worker silent for `stale_after` to `to_owner`;
        True for exactly one caller however many try at once."""
        now = now or utcnow()
        silent_since = now - stale_after
        alive = exists().where(WorkerHeartbeat.worker_id == from_owner,
                               WorkerHeartbeat.seen_at >= silent_since)
        with self.store.engine.begin() as conn:
            result = conn.execute(
                update(DigestRun)
                .where(DigestRun.period == period, DigestRun.owner == from_owner,
                       DigestRun.finished_at.is_(None), DigestRun.claimed_at < silent_since,
                       ~alive)
                .values(owner=to_owner, takeovers=DigestRun.takeovers + 1))
        return result.rowcount == 1

    def finish(self, period: str, owner: str, *, now: datetime | None = None) -> bool:
        with self.store.engine.begin() as conn:
            result = conn.execute(
                update(DigestRun)
                .where(DigestRun.period == period, DigestRun.owner == owner,
                       DigestRun.finished_at.is_(None))
                .values(finished_at=now or utcnow()))
        return result.rowcount == 1

    def deliveries(self, period: str) -> list[DeliveryRow]:
        with self.store.engine.connect() as conn:
            rows = conn.execute(select(DigestDelivery).where(DigestDelivery.period == period)
                                .order_by(DigestDelivery.started_at)).all()
        return [DeliveryRow(r.team_key, r.recipient, r.team, r.state, r.channel, r.ts,
                            int(r.attempts), r.error, _aware(r.started_at)) for r in rows]

    def start(self, period: str, owner: str, *, team: str, recipient: str,
              channel: str | None, now: datetime | None = None) -> bool:
        """Record that a message is about to be posted; False when the row exists already
        (another worker's, or this one's from an earlier attempt) or the period is no
        longer this worker's."""
        now = now or utcnow()
        if not self._owns(period, owner):
            return False
        try:
            with self.store.engine.begin() as conn:
                conn.execute(insert(DigestDelivery).values(
                    period=period, team_key=team_key(team), recipient=recipient, team=team,
                    state=SENDING, channel=channel, attempts=1, started_at=now,
                    updated_at=now))
        except IntegrityError:
            return False
        return True

    def settle(self, period: str, owner: str, *, team: str, recipient: str, state: str,
               channel: str | None = None, ts: str | None = None, error: str | None = None,
               retry: bool = False, now: datetime | None = None) -> bool:
        """Write the outcome of a post (or, with `retry`, one more attempt), only while the
        period is still `owner`'s."""
        values: dict[str, object] = {"state": state, "updated_at": now or utcnow()}
        if channel is not None:
            values["channel"] = channel
        if ts is not None:
            values["ts"] = ts
        values["error"] = error[:ERROR_LENGTH] if error else None
        if retry:
            values["attempts"] = DigestDelivery.attempts + 1
        owned = exists().where(DigestRun.period == period, DigestRun.owner == owner,
                               DigestRun.finished_at.is_(None))
        with self.store.engine.begin() as conn:
            result = conn.execute(
                update(DigestDelivery)
                .where(DigestDelivery.period == period,
                       DigestDelivery.team_key == team_key(team),
                       DigestDelivery.recipient == recipient, owned)
                .values(**values))
        return result.rowcount == 1

    def _owns(self, period: str, owner: str) -> bool:
        with self.store.engine.connect() as conn:
            found = conn.scalar(select(DigestRun.period).where(
                DigestRun.period == period, DigestRun.owner == owner,
                DigestRun.finished_at.is_(None)))
        return found is not None

    def prune(self, older_than: timedelta = KEEP_RUNS, *, now: datetime | None = None) -> int:
        """Forget periods claimed before `older_than` ago; returns how many."""
        cutoff = (now or utcnow()) - older_than
        old = select(DigestRun.period).where(DigestRun.claimed_at < cutoff)
        with self.store.engine.begin() as conn:
            conn.execute(delete(DigestDelivery).where(DigestDelivery.period.in_(old)))
            result = conn.execute(delete(DigestRun).where(DigestRun.claimed_at < cutoff))
        return int(result.rowcount)
