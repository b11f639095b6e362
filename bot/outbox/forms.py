"""A request form's answers, checked as Slack's own forms check them, and never trusted.

Slack's modal already refuses an empty required field, a malformed number or date: these
rules run again on the server because a submission is only a JSON body (an old modal
still open after the catalogue changed, a client that does not check, a crafted payload).
Every problem is a message for one field, shown next to it (`response_action: errors`).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from bot.catalogue.models import FieldType, FormField

TEXT_LIMIT = 500
LONG_TEXT_LIMIT = 3000
# Numbers go to the receiving tool as JSON numbers: at most 15 significant digits survive
# every JSON parser (IEEE doubles) unchanged.
NUMBER_DIGITS = 15
USER_ID = re.compile(r"[UW][A-Z0-9]{2,30}")
# Control characters other than tab and newline have no place in an answer and can upset
# whatever the answer is pasted into (a ticket, a terminal, a log); bidi overrides would
# make an answer display other than it reads in the owner's channel.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")

REQUIRED = "Please fill out this field."


@dataclass(frozen=True, slots=True)
class Answer:
    """One field's answer, as the requester gave it (None: an optional field left empty)."""

    field_id: str
    label: str
    type: FieldType
    value: str | None

    def json_value(self) -> Any:
        """The value for a JSON body: numbers as numbers, everything else as text."""
        if self.value is None or self.type is not FieldType.NUMBER:
            return self.value
        number = Decimal(self.value)
        return int(number) if number == number.to_integral_value() else float(number)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.field_id, "label": self.label, "type": self.type.value,
                "value": self.json_value()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Answer:
        value = data.get("value")
        return cls(str(data.get("id", "")), str(data.get("label", "")),
                   FieldType(data.get("type", "text")),
                   None if value is None else str(value))


@dataclass(frozen=True, slots=True)
class CheckedAnswers:
    answers: tuple[Answer, ...]
    errors: Mapping[str, str]
    """Field id → what is wrong with its answer; empty when the form may be sent."""

    @property
    def ok(self) -> bool:
        return not self.errors


def check_answers(form: Sequence[FormField],
                  submitted: Mapping[str, str | None]) -> CheckedAnswers:
    """The answers to `form` from `submitted` (field id → raw value; other keys ignored)."""
    answers: list[Answer] = []
    errors: dict[str, str] = {}
    for spec in form:
        raw = submitted.get(spec.id)
        value = _clean(raw, spec.type) if isinstance(raw, str) else None
        if value is None:
            if spec.required:
                errors[spec.id] = REQUIRED
            answers.append(Answer(spec.id, spec.label, spec.type, None))
            continue
        problem, value = _check(spec, value)
        if problem:
            errors[spec.id] = problem
        answers.append(Answer(spec.id, spec.label, spec.type, value))
    return CheckedAnswers(tuple(answers), errors)


def _clean(raw: str, kind: FieldType) -> str | None:
    text = _CONTROL.sub("", raw.replace("\r\n", "\n"))
    if kind is not FieldType.LONG_TEXT:
        text = " ".join(text.split())
    text = text.strip()
    return text or None


def _check(spec: FormField, value: str) -> tuple[str | None, str]:
    kind = spec.type
    if kind in (FieldType.TEXT, FieldType.LONG_TEXT):
        limit = TEXT_LIMIT if kind is FieldType.TEXT else LONG_TEXT_LIMIT
        if len(value) > limit:
            return f"Please keep it under {limit} characters (this is {len(value)}).", value
        return None, value
    if kind is FieldType.NUMBER:
        return _number(value)
    if kind is FieldType.DATE:
        try:
            return None, dt.date.fromisoformat(value).isoformat()
        except ValueError:
            return "Please pick a date.", value
    if kind is FieldType.CHOICE:
        if value not in spec.options:
            return "Please pick one of the options.", value
        return None, value
    if not USER_ID.fullmatch(value):
        return "Please pick a person.", value
    return None, value


def _number(value: str) -> tuple[str | None, str]:
    try:
        number = Decimal(value.replace(" ", ""))
    except InvalidOperation:
        return "Please enter a number, e.g. 2 or 2.5.", value
    if not number.is_finite():
        return "Please enter a number, e.g. 2 or 2.5.", value
    digits = number.normalize().as_tuple().digits
    if len(digits) > NUMBER_DIGITS:
        return f"Please use at most {NUMBER_DIGITS} digits.", value
    return None, format(number.normalize(), "f")
