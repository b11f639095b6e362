"""What docs/ promises about request forms and webhooks, checked against the code: the
catalogue authors' example loads, the receiver's verification snippet verifies a real POST
(and refuses a tampered one), and the documented JSON body has exactly the real body's
fields."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from email.message import Message
from pathlib import Path
from typing import Any

from webhookfake import WEBHOOK_SECRET, FakeWebhook

from bot.catalogue.loader import load_catalog
from bot.catalogue.models import FieldType, KnownWebhooks
from bot.outbox.forms import check_answers
from bot.outbox.webhooks import Webhook, post, request_body

DOCS = Path(__file__).resolve().parents[2] / "docs"


def fenced(page: str, language: str, containing: str) -> str:
    text = (DOCS / page).read_text(encoding="utf-8")
    blocks = re.findall(rf"^```{language}\n(.*?)^```", text, re.M | re.S)
    [block] = [b for b in blocks if containing in b]
    return str(block)


def test_the_catalogue_authors_example_loads_with_its_form(kdir: Path) -> None:
    (kdir / "example.yaml").write_text(fenced("catalogue-authors.md", "yaml", "deliver_to:"),
                                       encoding="utf-8")
    webhooks = KnownWebhooks(frozenset({"servicedesk"}), "test")
    offering = load_catalog(kdir, webhooks=webhooks)["standard-laptop"]
    form = offering.request.form
    assert [(f.id, f.type) for f in form] == [
        ("keyboard-layout", FieldType.CHOICE), ("for-whom", FieldType.USER),
        ("cost-centre", FieldType.TEXT), ("needed-by", FieldType.DATE),
        ("how-many", FieldType.NUMBER), ("anything-else-we-should-know", FieldType.LONG_TEXT)]
    assert offering.request.deliver_to is not None
    assert offering.request.deliver_to.webhook == "servicedesk"


def documented_verify() -> Any:
    namespace: dict[str, Any] = {}
    exec(fenced("slack-setup.md", "python", "def verify"), namespace)
    return namespace["verify"]


def test_the_documented_verification_accepts_a_real_post_and_refuses_a_forged_one(
        tmp_path: Path) -> None:
    verify = documented_verify()
    receiver = FakeWebhook().start()
    try:
        post(Webhook("servicedesk", receiver.url, WEBHOOK_SECRET), b'{"request_id":1}', "k")
        [got] = receiver.posts()
    finally:
        receiver.stop()
    headers = Message()  # case-insensitive, as a web framework hands them over
    for name, value in got.headers.items():
        headers[name] = value
    assert verify(WEBHOOK_SECRET, headers, got.body)
    assert not verify(WEBHOOK_SECRET, headers, got.body.replace(b"1", b"2"))
    assert not verify("another-secret-0000000", headers, got.body)
    headers.replace_header("X-Concierge-Request-Timestamp", "1000000000")
    assert not verify(WEBHOOK_SECRET, headers, got.body)


def keys(value: Any, at: str = "") -> set[str]:
    if isinstance(value, dict):
        return {f"{at}.{k}" for k in value} | {p for k, v in value.items()
                                                 for p in keys(v, f"{at}.{k}")}
    if isinstance(value, list) and value:
        return keys(value[0], f"{at}[]")
    return set()


def test_the_documented_body_has_the_fields_of_the_real_one(kdir: Path) -> None:
    documented = json.loads(fenced("slack-setup.md", "json", '"concierge.request"'))
    (kdir / "example.yaml").write_text(fenced("catalogue-authors.md", "yaml", "deliver_to:"),
                                       encoding="utf-8")
    offering = load_catalog(kdir)["standard-laptop"]
    answers = check_answers(offering.request.form, {"keyboard-layout": "German (QWERTZ)"})
    real = json.loads(request_body(
        request_id=42, idempotency_key="9c1f0e6a2b7d4e5f8a9b0c1d2e3f4a5b",
        submitted_at=datetime(2026, 11, 24, 10, 15, tzinfo=UTC),
        offering={"id": offering.id, "name": offering.name,
                  "owner_team": offering.owner.team, "cost": offering.cost,
                  "service_level": offering.service_level},
        requester={"slack_id": "U012AB3CD", "name": "alice", "team_id": "T012AB3CD"},
        answers=list(answers.answers)))
    assert keys(documented) == keys(real)
    assert [a["id"] for a in documented["answers"]] == [a["id"] for a in real["answers"]]
    assert len(documented["idempotency_key"]) == 32
