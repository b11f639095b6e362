"""A form's answers checked on the server, as Slack's own forms check them."""

from __future__ import annotations

import pytest

from bot.catalogue.models import FieldType, FormField
from bot.outbox.forms import LONG_TEXT_LIMIT, TEXT_LIMIT, Answer, check_answers

FORM = (
    FormField("model", "Which model?", FieldType.CHOICE, True, options=("T14", "MacBook Air")),
    FormField("for-whom", "For whom", FieldType.USER, True),
    FormField("needed-by", "Needed by", FieldType.DATE),
    FormField("how-many", "How many?", FieldType.NUMBER),
    FormField("why", "Why?", FieldType.TEXT),
    FormField("notes", "Notes", FieldType.LONG_TEXT),
)
GOOD = {"model": "T14", "for-whom": "U0ALICE", "needed-by": "2026-12-01", "how-many": "2.50",
        "why": "  my   old one\tdied ", "notes": "line one\r\nline two <b>&</b>"}


def test_good_answers_are_cleaned_and_kept_in_form_order() -> None:
    checked = check_answers(FORM, GOOD | {"not-a-field": "ignored"})
    assert checked.ok
    assert [(a.field_id, a.value) for a in checked.answers] == [
        ("model", "T14"), ("for-whom", "U0ALICE"), ("needed-by", "2026-12-01"),
        ("how-many", "2.5"), ("why", "my old one died"),
        ("notes", "line one\nline two <b>&</b>")]
    assert checked.answers[3].json_value() == 2.5


def test_missing_required_answers_are_errors_and_optional_ones_are_none() -> None:
    checked = check_answers(FORM, {"model": "   ", "why": None})
    assert checked.errors == {"model": "Please fill out this field.",
                              "for-whom": "Please fill out this field."}
    assert [a.value for a in checked.answers[2:]] == [None] * 4


@pytest.mark.parametrize(("field", "value", "message"), [
    ("model", "Dell XPS", "Please pick one of the options."),
    ("for-whom", "<!channel>", "Please pick a person."),
    ("needed-by", "2026-02-30", "Please pick a date."),
    ("how-many", "two", "Please enter a number, e.g. 2 or 2.5."),
    ("how-many", "NaN", "Please enter a number, e.g. 2 or 2.5."),
    ("how-many", "1234567890123456", "Please use at most 15 digits."),
    ("why", "x" * (TEXT_LIMIT + 1), f"Please keep it under {TEXT_LIMIT} characters (this is "
                                    f"{TEXT_LIMIT + 1})."),
    ("notes", "y" * (LONG_TEXT_LIMIT + 1), f"Please keep it under {LONG_TEXT_LIMIT} characters "
                                           f"(this is {LONG_TEXT_LIMIT + 1})."),
])
def test_a_crafted_answer_is_refused_next_to_its_field(field: str, value: str,
                                                       message: str) -> None:
    assert check_answers(FORM, GOOD | {field: value}).errors == {field: message}


def test_control_characters_never_reach_an_answer() -> None:
    checked = check_answers(FORM, GOOD | {"why": "a\x00b\x1bc\u2028d\u202ee",
                                          "notes": "x\x07\ny\x85"})
    assert [checked.answers[4].value, checked.answers[5].value] == ["abcde", "x\ny"]


def test_answers_survive_their_json_round_trip() -> None:
    answers = check_answers(FORM, GOOD).answers
    assert tuple(Answer.from_json(a.to_json()) for a in answers) == answers
    assert answers[3].to_json() == {"id": "how-many", "label": "How many?", "type": "number",
                                    "value": 2.5}
    whole = check_answers(FORM, GOOD | {"how-many": "3.0"}).answers[3]
    assert (whole.value, whole.json_value()) == ("3", 3)
