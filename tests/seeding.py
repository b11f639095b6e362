"""A question log as real use leaves it: questions decided by the real matcher and recorded
through the store's own API at chosen times, then the clicks that followed.

Shared by the suggestion, digest and chart tests (on SQLite and PostgreSQL). `DEVICES` and
`NETWORK` (written by `write_learning_catalogue`) are a small catalogue with comments, a
folded need and flow lists, so that edits to it show whether comments and order survive;
`seed_learning` fills a log against it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from bot.catalogue.models import Decision, DecisionKind
from bot.matching.matcher import Matcher
from bot.store.database import QuestionRecord, Store
from bot.store.recorder import user_hash
from bot.store.tables import utcnow

HASH_KEY = b"k" * 32

DEVICES = """\
# yaml-language-server: $schema=../bot/catalogue/schema/offering.schema.json
# Devices, owned by Workplace Services.
offerings:
  - id: standard-laptop
    name: Standard laptop
    summary: A managed Windows laptop with a dock, ready to sign in.
    kind: product
    owner: {team: Workplace Services, contact: C0WORKPLACE}
    request: {url: "https://it.example.test/request/laptop"}
    needs:
      - my laptop is old and slow   # the commonest ask
      - I need a new laptop
    keywords: [laptop, notebook]

  - id: laptop-repair
    name: Laptop repair
    summary: Diagnosis and repair of a broken company laptop.
    kind: service
    owner: {team: Workplace Services, contact: U0REPAIR1}
    request: {steps: Bring the laptop to the IT bar.}
    needs: [I spilled coffee over my keyboard]
    keywords: [repair, broken, laptop]
"""

NETWORK = """\
offerings:
  - id: vpn
    name: VPN and remote access
    summary: Secure access to internal systems from home.
    kind: service
    owner: {team: Network Team, contact: S0NETWORK1}
    request: {url: "https://it.example.test/request/vpn"}
    needs:
      - I cannot reach the intranet from home
      - >
        working from a hotel and the internal
        wiki will not load

    # Collaboration lives below; its owners read the digest in a channel.
  - id: team-site
    name: Team site
    summary: A shared workspace for documents and pages.
    kind: service
    owner: {team: Collaboration, contact: collab@example.test}
    request: {url: "https://it.example.test/request/site"}
    needs: [we need a place to share documents as a team]
  - id: shared-drive
    name: Shared drive
    summary: A shared folder in cloud storage.
    kind: service
    owner: {team: Collaboration, contact: "#collab-help"}
    request: {url: "https://it.example.test/request/drive"}
    needs: [we need a place to share documents as a team]
"""


def write_learning_catalogue(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "devices.yaml").write_text(DEVICES, encoding="utf-8")
    (directory / "network.yaml").write_text(NETWORK, encoding="utf-8")
    return directory


def ask(store: Store, matcher: Matcher, text: str, *, user: str | None = "U0ASKER1",
        at: datetime, surface: str = "dm") -> tuple[int, Decision]:
    """Record `text` as asked by `user` at `at`, decided by `matcher`, as the recorder does."""
    decision = matcher.decide(text)
    nearest = decision.candidates[0].offering.id if decision.candidates else None
    answer = decision.offering.id if decision.offering else None
    question_id = store.record_question(QuestionRecord(
        asked_at=at, surface=surface, text=text, decision=decision.kind.value,
        confidence=decision.confidence, latency_ms=5.0, team_id="T0TEAM",
        user_hash=user_hash(HASH_KEY, user), offering_id=answer,
        nearest_offering_id=answer or nearest,
        choices=tuple(o.id for o in decision.choices)
        if decision.kind is DecisionKind.CLARIFY else ()))
    return question_id, decision


@dataclass
class Seeded:
    """What `seed_learning` recorded, by name."""

    now: datetime
    ids: dict[str, int] = field(default_factory=dict)
    decisions: dict[str, Decision] = field(default_factory=dict)


def seed_learning(store: Store, matcher: Matcher, now: datetime | None = None) -> Seeded:
    """A month of use of that catalogue (the comments say what each question shows)."""
    now = now or utcnow()
    seeded = Seeded(now)

    def q(name: str, text: str, user: str | None, days: float, minutes: float = 0) -> int:
        at = now - timedelta(days=days, minutes=minutes)
        seeded.ids[name], seeded.decisions[name] = ask(store, matcher, text, user=user, at=at)
        return seeded.ids[name]

    # A "Did you mean…" between repair and a new laptop, settled by picking repair, by
    # three people in two wordings: the strongest evidence, one group.
    for name, user, days in (("cracked1", "U0ANNA", 1), ("cracked2", "U0BEN", 2)):
        store.record_choice(q(name, "my laptop screen is cracked", user, days), "laptop-repair")
    store.record_choice(q("cracked3", "laptop screen cracked", "U0CARA", 3), "laptop-repair")
    # The same need with a phone number in it: evidence, never a phrase to publish.
    store.record_choice(q("cracked_phone", "call me on 0171 5550 1234, laptop screen cracked",
                          "U0DAN", 1), "laptop-repair")
    # Picked, then rated not what they needed: no evidence for the pick.
    picked = q("files", "files for my team", "U0ERIN", 2)
    store.record_choice(picked, "team-site")
    store.record_feedback(question_id=picked, offering_id="team-site", helpful=False,
                          user_hash="h-erin", at=now - timedelta(days=2))
    # Picked shared-drive for the team-sharing question.
    store.record_choice(q("sharing", "share documents as a team", "U0FRED", 4), "shared-drive")
    # Declined, then asked again in other words a few minutes later, answered and rated
    # helpful: the declined wording is evidence for the VPN.
    q("wiki", "cannot open the wiki from home", "U0GIL", 3, minutes=6)
    helpful = q("intranet", "intranet from home office", "U0GIL", 3, minutes=2)
    store.record_feedback(question_id=helpful, offering_id="vpn", helpful=True,
                          user_hash="h-gil", at=now - timedelta(days=3))
    # Answered outright and its Request clicked: covered already, never suggested.
    clicked = q("new_laptop", "I need a new laptop", "U0HAL", 1)
    store.record_request_click(question_id=clicked, offering_id="standard-laptop",
                               user_hash="h-hal", at=now - timedelta(days=1))
    # Unmet needs: one near the laptops, one near nothing.
    q("car", "I need a company car for customer visits", "U0IDA", 2)
    q("canteen", "where is the canteen", None, 5)
    # Outside a 7-day period but inside 30 days.
    store.record_choice(q("old", "laptop screen cracked again", "U0JO", 20), "laptop-repair")
    return seeded
