"""`concierge digest`: the owners' digests, shown (`--dry-run`) or sent now (`--send`).

`--dry-run` reads the database and the catalogue and prints, team by team, where the
digest of the current period would go and what it says; it needs no Slack token, writes
nothing and claims nothing. `--send` sends the current period through the same claim as
the scheduler in `concierge serve` (`bot.slack.digests`): a period already sent, or being
sent by a live worker, is not sent again, so running it from cron beside the scheduler is
safe. While it sends it writes a heartbeat like a worker, so nobody takes its period over.
"""

from __future__ import annotations

import argparse
import json
import os
from datetime import timedelta
from typing import Any, TextIO

from sqlalchemy.exc import SQLAlchemyError

from bot.admin.digest import TeamDigest, build_digests, quality_findings
from bot.admin.reports import load_activity
from bot.admin.schedule import CHANNELS_SETTING, SETTING, DigestSettings
from bot.admin.suggest import suggest
from bot.catalogue.loader import load_catalog
from bot.cli.options import add_knowledge, add_matcher
from bot.cli.reports import DATABASE_HELP, first_line, open_for_reading, reading
from bot.cli.suggest import owner_team
from bot.errors import ConfigError, StoreUnavailable
from bot.live import Poller
from bot.matching.engine import build_matcher
from bot.matching.matcher import Matcher
from bot.settings import knowledge_dir, matcher_mode, whole_number
from bot.store.digests import DigestLog
from bot.store.tables import utcnow
from bot.store.takeover import BEATS_PER_TAKEOVER, DEFAULT_TAKEOVER_AFTER, new_worker_id

DESCRIPTION = f"""\
Each owner team's digest of the current period: questions about their offerings, Helpful /
Not helpful, Request clicks, unmet needs whose nearest offering is theirs, needs to add
(as `concierge suggest`), and quality findings. It goes to the owner contacts in the
catalogue: a user (U…) by DM, a usergroup (S…) by DM to each member or to the channel
{CHANNELS_SETTING} names for it, a channel (#name, C…) there; email contacts are skipped and
listed. A team with nothing to report gets nothing. The period follows {SETTING}
(default: weekly, Mondays 09:00 UTC; with `off`, the default cadence). Reads the
{DATABASE_HELP}; --send also needs SLACK_BOT_TOKEN (and SLACK_API_URL to use another Web
API)."""


def add_digest_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "digest", help="the owners' weekly digests: show them or send them now",
        description=DESCRIPTION)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--dry-run", action="store_true",
                      help="print what would be sent and where; sends and claims nothing")
    what.add_argument("--send", action="store_true",
                      help="send the current period's digests now, unless already sent")
    p.add_argument("--owner", metavar="TEAM", help="with --dry-run: only this owner team")
    p.add_argument("--json", action="store_true",
                   help="with --dry-run: the digests and their Block Kit messages as JSON")
    add_knowledge(p)
    add_matcher(p, "for the suggested needs")
    p.set_defaults(handler=cmd_digest)


def cmd_digest(args: argparse.Namespace, out: TextIO) -> int:
    if args.send and (args.owner or args.json):
        raise ConfigError("go with --dry-run; --send sends every team's digest",
                          setting="--owner and --json")
    settings = DigestSettings.from_env()
    catalog = load_catalog(knowledge_dir(args.knowledge))
    team = owner_team(catalog, args.owner)
    matcher = build_matcher(catalog, matcher_mode(args.matcher))
    if args.send:
        return _send(settings, matcher, out)
    schedule = settings.cadence
    slot = schedule.latest_slot(utcnow())
    with reading() as store:
        digests = build_digests(
            load_activity(store, schedule.days, now=slot), catalog,
            suggestions=suggest(load_activity(store, 30, now=slot), matcher),
            findings=quality_findings(matcher), group_channels=settings.group_channels)
        run = DigestLog(store).run(schedule.key(slot))
    digests = [d for d in digests if team is None or d.team == team]
    if args.json:
        from bot.slack.digests import digest_message

        out.write(json.dumps({"period": schedule.key(slot), "schedule": schedule.describe(),
                              "digests": [{**d.to_json(), "message": (
                                  digest_message(d, settings.schedule).payload()
                                  if not d.empty else None)} for d in digests]},
                             ensure_ascii=False) + "\n")
        return 0
    status = ("not sent yet" if run is None else f"sent {run.finished_at:%Y-%m-%d %H:%M} UTC"
              if run.finished_at else f"being sent by {run.owner}")
    off = "" if settings.schedule else f" ({SETTING} is off: sent only by --send)"
    out.write(f"Digest period {schedule.key(slot)} ({schedule.describe()}{off}): {status}\n")
    for digest in digests:
        out.write("\n" + dry_run_text(digest) + "\n")
    return 0


def dry_run_text(digest: TeamDigest) -> str:
    where = "; ".join(d.describe() for d in digest.destinations) or "nowhere"
    lines = [f"=== {digest.team} → {where}"]
    lines += [f"    skipped: {s.contact or '-'} ({s.why})" for s in digest.skipped]
    if digest.empty:
        lines.append("    nothing to report: not sent")
        return "\n".join(lines)
    return "\n".join([*lines, digest.view().text()])


def _send(settings: DigestSettings, matcher: Matcher, out: TextIO) -> int:
    # Deferred: the other commands must not pay for importing the Slack SDK.
    from bot.slack.app import (
        DEFAULT_API_URL,
        MAX_TAKEOVER_AFTER,
        MIN_TAKEOVER_AFTER,
        checked_bot_token,
        web_client,
    )
    from bot.slack.digests import DigestSender

    def get(name: str) -> str:
        return os.environ.get(name, "").strip()

    client = web_client(checked_bot_token(get("SLACK_BOT_TOKEN")),
                        get("SLACK_API_URL") or DEFAULT_API_URL)
    stale_after = whole_number(get, "CONCIERGE_TAKEOVER_AFTER", DEFAULT_TAKEOVER_AFTER,
                               MIN_TAKEOVER_AFTER, MAX_TAKEOVER_AFTER)
    store = open_for_reading()
    worker_id = new_worker_id()
    try:
        store.heartbeat(worker_id)
        beats = Poller(stale_after / BEATS_PER_TAKEOVER,
                       [lambda: store.heartbeat(worker_id)], name="digest-heartbeat").start()
        try:
            summary = DigestSender(store, client, lambda: matcher, settings,
                                   worker_id=worker_id,
                                   stale_after=timedelta(seconds=stale_after)).send()
        finally:
            beats.stop()
    except SQLAlchemyError as exc:
        raise StoreUnavailable(f"cannot use the database ({first_line(exc)})",
                               url=store.url) from exc
    finally:
        store.close()
    out.write("\n".join(summary.lines()) + "\n")
    # Sent before, or being sent by a live worker: nothing wrong, nothing more to do.
    return 1 if summary.failed or summary.status == "unfinished" else 0

