"""What `check` catches of what owners get wrong most: a request link copied along with an
offering, a list item merged into the one above, an essay of a summary, a YAML slip reported
the way a person can act on, an unreadable folder."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import WriteCatalogue, WriteText
from unprivileged import as_unprivileged, shared_folder

from bot.catalogue.loader import check_knowledge, schema_path
from bot.catalogue.models import Severity

NewOffering = Callable[..., dict[str, Any]]


def rendered(kdir: Path) -> list[str]:
    return [p.render().removeprefix(f"{kdir}/") for p in check_knowledge(kdir).problems]


# --- a request link copied with an offering -------------------------------------------------


def test_two_offerings_with_one_request_link_are_a_warning(
        kdir: Path, write_catalogue: WriteCatalogue, new_offering: NewOffering) -> None:
    link = {"url": "https://it.example.test/request/laptop"}
    write_catalogue([new_offering("laptop", request=link)], name="a.yaml")
    write_catalogue([new_offering("docking-station", request=link)], name="b.yaml")
    report = check_knowledge(kdir)
    assert report.catalog is not None  # a warning: the catalogue still loads
    [warning] = report.warnings
    assert (Path(warning.path).name, warning.field) == ("b.yaml", "request.url")
    assert warning.message.startswith(
        f"the same request link as 'laptop' ({kdir / 'a.yaml'}:")


def test_a_retired_offering_may_keep_its_replacements_link(
        kdir: Path, write_catalogue: WriteCatalogue, new_offering: NewOffering) -> None:
    link = {"url": "https://it.example.test/request/vpn"}
    write_catalogue([new_offering("vpn", request=link),
                     new_offering("dial-in", request=link, lifecycle="retired",
                                  replaced_by="vpn")])
    assert check_knowledge(kdir).problems == ()


# --- a list item indented one space too far ------------------------------------------------

MERGED = """\
offerings:
  - id: headset
    name: Headset
    summary: A wired headset.
    kind: product
    owner: {team: Workplace}
    request: {steps: Ask at the IT bar.}
    needs:
      - I need a laptop
       - I need a headset
      - my calls sound bad
"""


def test_a_list_item_merged_into_the_one_above_is_an_error(kdir: Path,
                                                           write_text: WriteText) -> None:
    write_text("merged.yaml", MERGED)
    [problem] = check_knowledge(kdir).errors
    assert (problem.line, problem.field) == (10, "needs[0]")
    assert "'I need a laptop - I need a headset'" in problem.message
    assert "indent the `-` like the other items" in problem.message


def test_a_bulleted_text_folded_into_one_line_is_a_warning(kdir: Path,
                                                           write_text: WriteText) -> None:
    write_text("bullets.yaml", MERGED.replace("       - I need a headset\n", "") + (
        "    description: What you get\n"
        "      - a headset\n"
        "      - a spare cushion\n"))
    report = check_knowledge(kdir)
    assert report.catalog is not None
    [warning] = report.warnings
    assert (warning.line, warning.field, warning.severity) == (12, "description",
                                                              Severity.WARNING)
    assert "write `|` after the field's colon" in warning.message


def test_quoted_and_block_texts_with_dashes_are_fine(kdir: Path, write_text: WriteText) -> None:
    write_text("fine.yaml", MERGED.replace("       - I need a headset\n", "") + (
        "    description: |\n"
        "      What you get\n"
        "      - a headset\n"
        "    keywords: [\"wired - not wireless\"]\n"))
    assert check_knowledge(kdir).problems == ()


# --- lengths -------------------------------------------------------------------------------


def test_a_summary_of_4300_characters_is_an_error(kdir: Path, write_catalogue: WriteCatalogue,
                                                  new_offering: NewOffering) -> None:
    write_catalogue([new_offering("essay", summary="A sentence that goes on. " * 172)])
    [problem] = check_knowledge(kdir).errors
    assert problem.field == "summary"
    assert problem.message == ("is 4,300 characters long; at most 300 are allowed; one "
                               "sentence here, the details in `description`")


@pytest.mark.parametrize(("field", "limit"), [
    ("name", 150), ("summary", 300), ("description", 5000), ("category", 100),
    ("cost", 500), ("service_level", 500), ("audience", 500),
])
def test_every_text_field_has_a_limit(kdir: Path, write_catalogue: WriteCatalogue,
                                      new_offering: NewOffering, field: str,
                                      limit: int) -> None:
    write_catalogue([new_offering("at-limit", **{field: "x" * limit}),
                     new_offering("over-limit", **{field: "x" * (limit + 1)})])
    [problem] = check_knowledge(kdir).errors
    assert problem.field == field and f"at most {limit:,} are allowed" in problem.message


@pytest.mark.parametrize(("field", "value"), [
    ("id", "x" * 101), ("needs", ["x" * 501]), ("keywords", ["x" * 101]),
    ("owner", {"team": "x" * 101}), ("request", {"steps": "x" * 3001}),
    ("request", {"url": "https://it.example.test/" + "x" * 2000}),
])
def test_lists_ids_and_nested_texts_have_limits(kdir: Path, write_catalogue: WriteCatalogue,
                                                new_offering: NewOffering, field: str,
                                                value: object) -> None:
    fields = {field: value} if field != "id" else {}
    write_catalogue([new_offering(value if field == "id" else "long", **fields)])
    assert any("are allowed" in p.message for p in check_knowledge(kdir).errors)


def test_the_schema_ships_with_every_limit(kdir: Path) -> None:
    # Editors validate with the same file: the limits are in it, not only in Python.
    text = schema_path().read_text(encoding="utf-8")
    assert text.count('"maxLength"') >= 14


# --- YAML slips ----------------------------------------------------------------------------

HEAD = "offerings:\n  - id: a\n    name: A\n"


@pytest.mark.parametrize(("body", "line", "hint"), [
    ("    summary: Includes: a laptop\n", 4, "put the text in quotes"),
    ("    summary this has no colon\n    kind: service\n", 4, "add the `:`"),
    ("   kind: service\n", 4, "check the indentation"),
    ("\tkind: service\n", 4, "indent with spaces, not tabs"),
    ('    summary: "never closed\n    kind: service\n', 4, "never closed"),
    ("    keywords: [a, b\n    kind: service\n", 4, "not closed with `]`"),
    ("    name: @admin\n", 4, "quote text that starts with @"),
], ids=["colon-in-text", "missing-colon", "misindented", "tab", "open-quote", "open-bracket",
        "at-sign"])
def test_yaml_errors_say_where_and_what_to_do(kdir: Path, write_text: WriteText, body: str,
                                              line: int, hint: str) -> None:
    path = write_text("slip.yaml", HEAD + body)
    [problem] = check_knowledge(kdir).errors
    assert (problem.path, problem.line, problem.field) == (str(path), line, "yaml")
    assert hint in problem.message


# --- folders that cannot be read -------------------------------------------------------------


def _check(kdir: Path) -> list[tuple[str, str, str]]:
    return [(p.path, p.field, p.message) for p in check_knowledge(kdir).errors]


def test_an_unreadable_subfolder_is_an_error_not_silently_skipped(
        write_catalogue: WriteCatalogue, new_offering: NewOffering) -> None:
    with shared_folder("concierge-dir-") as kdir:
        write_catalogue([new_offering("printer-toner")], directory=kdir)
        write_catalogue([new_offering("mobile-phone")], directory=kdir / "phones")
        for path in (kdir / "catalogue.yaml", kdir / "phones" / "catalogue.yaml"):
            path.chmod(0o644)
        (kdir / "phones").chmod(0)
        errors = as_unprivileged(lambda: _check(kdir))
    assert errors == [[str(kdir / "phones"), "directory",
                       "cannot read directory: Permission denied"]]


def test_an_unreadable_knowledge_directory_is_not_reported_as_empty() -> None:
    with shared_folder("concierge-dir-") as parent:
        kdir = parent / "knowledge"
        kdir.mkdir(mode=0)
        kdir.chmod(0)  # mkdir's mode is subject to the umask
        errors = as_unprivileged(lambda: _check(kdir))
    assert errors == [[str(kdir), "directory", "cannot read directory: Permission denied"]]
    assert os.geteuid() == 0 or errors  # (run as whoever: the answer is the same)
