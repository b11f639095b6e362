"""Request forms in the schema: the values the loader builds, every problem with its line, and
the webhook names checked against those the caller knows."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.catalogue.loader import check_knowledge, load_catalog
from bot.catalogue.models import DeliverTo, FieldType, FormField, KnownWebhooks, Severity
from bot.cli.main import main

# One offering with a form; the comments are line numbers.
FORM = """\
id: laptop
name: Laptop
summary: A laptop.
kind: product
owner:
  team: Workplace
  contact: "#it-workplace"
request:
  form:
    - label: Which model?
      type: choice
      options: [ThinkPad T14, MacBook Air]
      required: true
    - label: For whom
      type: user
    - label: Needed by
      type: date
      help: We deliver within 5 business days.
    - id: notes
      label: Anything else?
      type: long text
    - label: How many?
      type: number
  deliver_to:
    channel: "#it-requests"
    owner: true
    webhook: servicedesk
needs: [I need a laptop]
"""
#  8 request, 9 form, 10 first field, 14 second, 16 third, 19 fourth (id), 22 fifth,
#  24 deliver_to, 25 channel, 26 owner, 27 webhook

SERVING = KnownWebhooks(frozenset({"servicedesk"}), "CONCIERGE_WEBHOOK_<NAME>_URL")


def lines(text: str, replace: dict[int, str]) -> str:
    out = text.splitlines()
    for number, new in sorted(replace.items(), reverse=True):
        out[number - 1:number] = new.splitlines() if new else []
    return "\n".join(out) + "\n"


def problems(kdir: Path, text: str, webhooks: KnownWebhooks | None = SERVING) -> list[str]:
    (kdir / "offering.yaml").write_text(text, encoding="utf-8")
    report = check_knowledge(kdir, webhooks=webhooks)
    return [p.render().removeprefix(f"{kdir / 'offering.yaml'}:") for p in report.problems]


def test_a_form_becomes_frozen_fields_with_ids_and_destinations(kdir: Path) -> None:
    (kdir / "offering.yaml").write_text(FORM, encoding="utf-8")
    request = load_catalog(kdir, webhooks=SERVING)["laptop"].request
    assert request.has_form and request.url is None
    assert request.form == (
        FormField("which-model", "Which model?", FieldType.CHOICE, True, None,
                  ("ThinkPad T14", "MacBook Air")),
        FormField("for-whom", "For whom", FieldType.USER),
        FormField("needed-by", "Needed by", FieldType.DATE,
                  help="We deliver within 5 business days."),
        FormField("notes", "Anything else?", FieldType.LONG_TEXT),
        FormField("how-many", "How many?", FieldType.NUMBER))
    assert request.deliver_to == DeliverTo("#it-requests", True, "servicedesk")


def test_an_old_file_without_a_form_stays_valid(kdir: Path) -> None:
    text = lines(FORM, {9: "  url: https://it.example.test/laptop"} | dict.fromkeys(
        range(10, 28), ""))
    (kdir / "offering.yaml").write_text(text, encoding="utf-8")
    request = load_catalog(kdir)["laptop"].request
    assert (request.form, request.deliver_to, request.has_form) == ((), None, False)


def test_ids_made_from_labels_fold_accents_and_fall_back_to_the_position(kdir: Path) -> None:
    text = lines(FORM, {10: "    - label: Für wen?", 14: "    - label: ???"})
    (kdir / "offering.yaml").write_text(text, encoding="utf-8")
    form = load_catalog(kdir, webhooks=SERVING)["laptop"].request.form
    assert [f.id for f in form[:2]] == ["fur-wen", "field-2"]


@pytest.mark.parametrize(("change", "expected"), [
    ({24: "", 25: "", 26: "", 27: ""},
     "9: request.deliver_to: a form needs `deliver_to`: where submitted requests go "
     "(`channel`, `owner: true` and/or `webhook`)"),
    ({11: "      type: choice\n      required: true", 12: ""},
     "10: request.form[0].options: a `choice` field needs `options`: the answers to pick from"),
    ({15: "      type: user\n      options: [me]"},
     "16: request.form[1].options: only a `type: choice` field has `options`"),
    ({11: "      type: longtext"},
     "11: request.form[0].type: must be one of `text`, `long text`, `number`, `date`, "
     "`choice`, `user`, not 'longtext' (did you mean `long text`?)"),
    ({12: "      options: [ThinkPad T14, ThinkPad T14]"},
     "12: request.form[0].options: lists the same option twice"),
    ({12: "      options: [ThinkPad T14, '" + "x" * 76 + "']"},
     "12: request.form[0].options[1]: is 76 characters long; at most 75 are allowed"),
    ({19: "    - id: Notes!"},
     "19: request.form[3].id: 'Notes!' is not a valid field id: use lowercase letters, "
     "digits, `-` and `_` (at most 50), e.g. `needed-by`"),
    ({19: "    - id: how-many"},
     "22: request.form[4]: field id 'how-many' is also the id of request.form[3]; give one "
     "of them another `id` (answers are keyed by it)"),
    ({14: "    - label: For whom\n      lable: x"},
     "15: request.form[1].lable: unknown field (did you mean `label`?) (custom metadata must "
     "start with `x-`)"),
    ({25: '    channel: "it-requests"'},
     "25: request.deliver_to.channel: must be a channel, `#name` or its id `C…`, "
     "not 'it-requests'"),
    ({27: "    webhook: https://hooks.example.test/x"},
     "27: request.deliver_to.webhook: must be a webhook's name (lowercase letters, digits "
     "and `_`, e.g. `servicedesk`), not 'https://hooks.example.test/x': its URL and secret "
     "are set in the environment, never here"),
    ({25: "", 26: "    owner: false", 27: ""},
     "24: request.deliver_to: needs a `channel`, `owner: true` and/or a `webhook`"),
    ({7: "  contact: S0WORKPLACE"},
     "26: request.deliver_to.owner: the owner contact 'S0WORKPLACE' is a usergroup, which "
     "cannot receive a request; set `owner.contact` to a user (U…) or a channel (#name or "
     "C…), or use `channel:`"),
    ({7: "  contact: workplace@example.test"},
     "26: request.deliver_to.owner: the owner contact 'workplace@example.test' is an email "
     "address, which cannot receive a request; set `owner.contact` to a user (U…) or a "
     "channel (#name or C…), or use `channel:`"),
    ({9: "  url: https://it.example.test/laptop"} | dict.fromkeys(range(10, 24), ""),
     "10: request.form: `deliver_to` without a `form`: add the form's questions, or remove "
     "`deliver_to`"),
])
def test_every_form_problem_is_located_and_explained(kdir: Path, change: dict[int, str],
                                                     expected: str) -> None:
    assert expected in problems(kdir, lines(FORM, change))


def test_a_form_has_at_most_ten_fields(kdir: Path) -> None:
    extra = "\n".join(f"    - label: Question {n}" for n in range(6))
    assert problems(kdir, lines(FORM, {22: "    - label: How many?\n" + extra})) == [
        "9: request.form: has 11 fields; a form has at most 10"]


def test_the_owner_must_have_a_contact_to_receive_requests(kdir: Path) -> None:
    assert problems(kdir, lines(FORM, {7: ""})) == [
        "25: request.deliver_to.owner: there is no `owner.contact`, which cannot receive a "
        "request; set `owner.contact` to a user (U…) or a channel (#name or C…), or use "
        "`channel:`"]


def test_an_unknown_webhook_is_an_error_with_the_names_configured(kdir: Path) -> None:
    known = KnownWebhooks(frozenset({"servicedesk", "facilities"}), "CONCIERGE_WEBHOOKS")
    text = lines(FORM, {27: "    webhook: servicedesks"})
    assert problems(kdir, text, known) == [
        "27: request.deliver_to.webhook: unknown webhook 'servicedesks' (did you mean "
        "`servicedesk`?); configured: facilities, servicedesk (CONCIERGE_WEBHOOKS)"]
    assert problems(kdir, text, KnownWebhooks(frozenset(), "the environment")) == [
        "27: request.deliver_to.webhook: unknown webhook 'servicedesks'; configured: none "
        "(the environment)"]


def test_with_no_webhook_known_and_not_serving_a_name_is_a_warning(kdir: Path) -> None:
    report_lines = problems(kdir, FORM, KnownWebhooks(frozenset(), "set CONCIERGE_WEBHOOKS",
                                                      strict=False))
    assert report_lines == ["27: request.deliver_to.webhook: warning: webhook 'servicedesk' "
                            "cannot be checked: no webhook is configured here (set "
                            "CONCIERGE_WEBHOOKS)"]
    report = check_knowledge(kdir, webhooks=KnownWebhooks(frozenset(), "x", strict=False))
    assert report.catalog is not None and [p.severity for p in report.problems] == [
        Severity.WARNING]
    # Without anything known (ask, eval, the benchmarks) the names are not checked at all.
    assert problems(kdir, FORM, None) == []


def test_webhook_names_are_checked_on_files_taken_from_the_cache(kdir: Path) -> None:
    assert problems(kdir, FORM) == []
    again = check_knowledge(kdir, webhooks=KnownWebhooks(frozenset({"other"}), "env"))
    assert again.cached_files == 1
    assert [p.line for p in again.problems] == [27]


def test_concierge_check_flags_unknown_webhooks_by_what_it_knows(
        kdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    (kdir / "offering.yaml").write_text(FORM, encoding="utf-8")
    for name in ("CONCIERGE_WEBHOOKS", "CONCIERGE_WEBHOOK_SERVICEDESK_URL"):
        monkeypatch.delenv(name, raising=False)
    where = f"{kdir / 'offering.yaml'}:27: request.deliver_to.webhook"
    # Nothing configured here (a laptop, CI without secrets): a warning, not a failure.
    assert main(["check", "--knowledge", str(kdir)]) == 0
    out = capsys.readouterr().out
    assert f"{where}: warning: webhook 'servicedesk' cannot be checked" in out
    # Names given: an unknown one fails the check.
    assert main(["check", "--knowledge", str(kdir), "--webhooks", "facilities"]) == 1
    assert (f"{where}: unknown webhook 'servicedesk'; configured: facilities"
            in capsys.readouterr().out)
    monkeypatch.setenv("CONCIERGE_WEBHOOKS", "servicedesk")
    assert main(["check", "--knowledge", str(kdir)]) == 0
    monkeypatch.delenv("CONCIERGE_WEBHOOKS")
    monkeypatch.setenv("CONCIERGE_WEBHOOK_SERVICEDESK_URL", "https://desk.example.test/h")
    assert main(["check", "--knowledge", str(kdir)]) == 0
    assert "ok: 1 offering in 1 file" in capsys.readouterr().out
    assert main(["check", "--knowledge", str(kdir), "--webhooks", "Not A Name"]) == 2
    assert "--webhooks: 'Not' is not a webhook name" in capsys.readouterr().err
