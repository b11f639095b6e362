"""What a card's buttons carry, and who may press them.

    value = <offering id> "#" <question id, or nothing> "#" <tag>
    tag   = first 16 hex digits of HMAC-SHA256(key, "<offering id>#<question id>#<asker>")

A card answers one person's question, and its choices and ratings are that person's to
give: in a channel thread anyone can see the card, and another user's click changed the
recorded choice, replaced the card for everyone, and rated an answer to a need that was
not theirs. The asker is not stored anywhere (Concierge keeps no Slack ids); instead each
value is tagged with a key only the server knows, over the offering, the question and the
asker's id. A click is accepted when the tag computed for the *clicking* user matches, so
only the asker's clicks pass, and a value that was made up or altered (a 5,000-character
id, an escape sequence, a question id of `²` or of forty digits) never gets further than
this module.

The key is derived from the app's signing secret (its app-level token in Socket Mode):
every worker and host derives the same one, and rotating the secret retires old cards,
whose clicks are then refused with a request to ask again.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field

TAG_HEX = 16
# Offering ids are slugs of at most 100 characters (the schema); question ids are row ids.
_VALUE = re.compile(r"(?P<offering>[a-z0-9][a-z0-9-]{0,99})#(?P<question>[0-9]{0,18})"
                    rf"#(?P<tag>[0-9a-f]{{{TAG_HEX}}})", re.ASCII)
_KEY_PURPOSE = b"concierge button values v1"


class ButtonRefused(Exception):
    """A click that is not acted on; `reason` is `malformed` or `not_the_asker`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Press:
    """A click the asker made on one of their card's buttons."""

    offering_id: str
    question_id: int | None


@dataclass(frozen=True)
class ButtonKeys:
    """Makes button values for cards and reads them back from clicks."""

    key: bytes = field(repr=False)

    @classmethod
    def from_secret(cls, secret: str) -> ButtonKeys:
        return cls(hmac.new(secret.encode(), _KEY_PURPOSE, hashlib.sha256).digest())

    @classmethod
    def ephemeral(cls) -> ButtonKeys:
        """A key of this process alone (tests, one-off apps): other processes refuse its
        cards."""
        return cls(secrets.token_bytes(32))

    def card(self, question_id: int | None, asker: str | None) -> CardButtons:
        """The values of one card's buttons: the answer to `question_id` for `asker`."""
        return CardButtons(self, question_id, asker or "")

    def tag(self, offering_id: str, question_id: int | None, asker: str) -> str:
        message = f"{offering_id}#{'' if question_id is None else question_id}#{asker}"
        return hmac.new(self.key, message.encode(), hashlib.sha256).hexdigest()[:TAG_HEX]

    def read(self, value: object, clicker: str | None) -> Press:
        """The press behind a button value clicked by `clicker`; `ButtonRefused` when the
        value is not one of ours or the clicker did not ask the question."""
        found = _VALUE.fullmatch(value) if isinstance(value, str) else None
        if found is None:
            raise ButtonRefused("malformed")
        offering_id, question = found.group("offering"), found.group("question")
        question_id = int(question) if question else None
        expected = self.tag(offering_id, question_id, clicker or "")
        if not hmac.compare_digest(expected, found.group("tag")):
            raise ButtonRefused("not_the_asker")
        return Press(offering_id, question_id)


@dataclass(frozen=True, slots=True)
class CardButtons:
    """Button values for one card: each names an offering, the question and (tagged) the
    person who asked it."""

    keys: ButtonKeys
    question_id: int | None
    asker: str

    def value(self, offering_id: str) -> str:
        question = "" if self.question_id is None else str(self.question_id)
        tag = self.keys.tag(offering_id, self.question_id, self.asker)
        return f"{offering_id}#{question}#{tag}"
