"""The loader: every error kind located to path and line, and the values it builds."""

from __future__ import annotations

import dataclasses
import io
import os
import re
import resource
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bot.catalogue.loader import LoadReport, check_knowledge, load_catalog
from bot.catalogue.models import Catalog, Kind, Lifecycle, Owner, Problem, Severity
from bot.cli.main import main
from bot.errors import KnowledgeError

# One complete offering; the comments are its line numbers.
SINGLE = """\
id: team-chat
name: Team chat
summary: A chat space for your team.
kind: service
owner:
  team: Collaboration
  contact: "#it-collab"
request:
  url: https://it.example.test/chat
needs:
  - my team needs a place to chat
keywords: [chat]
"""
#  1 id, 2 name, 3 summary, 4 kind, 5 owner, 6 team, 7 contact,
#  8 request, 9 url, 10 needs, 11 first need, 12 keywords

# A file of two offerings: the second starts on line 9.
PAIR_HEAD = """\
offerings:
  - id: first
    name: First
    summary: The first one.
    kind: service
    owner: {team: T}
    request: {steps: ask at the desk}
    needs: [the first need]
"""
SECOND_ITEM = [
    "  - id: second",                  # 9
    "    name: Second",                # 10
    "    summary: The second one.",    # 11
    "    kind: product",               # 12
    "    owner:",                      # 13
    "      team: T",                   # 14
    "    request: {steps: ask}",       # 15
    "    needs: [the second need]",    # 16
]


def report_for(kdir: Path) -> LoadReport:
    return check_knowledge(kdir)


def only(report: LoadReport, field: str) -> list[Problem]:
    return [p for p in report.problems if p.field == field]


def one(report: LoadReport, field: str) -> Problem:
    found = only(report, field)
    assert found, f"no problem for {field!r} in {[p.render() for p in report.problems]}"
    return found[0]


def set_line(text: str, lineno: int, new: str) -> str:
    lines = text.splitlines()
    lines[lineno - 1] = new
    return "\n".join(lines) + "\n"


# --- the valid baseline -----------------------------------------------------------------


def test_valid_single_offering_loads_into_frozen_values(kdir: Path, write_text) -> None:
    path = write_text("chat.yaml", SINGLE)
    catalog = load_catalog(kdir)
    assert len(catalog) == 1
    offering = catalog["team-chat"]
    assert offering.kind is Kind.SERVICE
    assert offering.lifecycle is Lifecycle.LIVE
    assert offering.owner == Owner(team="Collaboration", contact="#it-collab")
    assert offering.needs == ("my team needs a place to chat",)
    assert offering.keywords == ("chat",)
    assert offering.source is not None
    assert (offering.source.path, offering.source.line) == (str(path), 1)
    assert check_knowledge(kdir).problems == ()


def test_offering_values_are_frozen(kdir: Path, write_text) -> None:
    write_text("chat.yaml", SINGLE)
    offering = load_catalog(kdir)["team-chat"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        offering.name = "Other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        offering.owner.team = "Other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        offering.request.url = "https://evil.example"  # type: ignore[misc]
    assert isinstance(offering.needs, tuple)
    assert isinstance(offering.keywords, tuple)


def test_whitespace_in_names_and_needs_is_normalised(kdir: Path, write_text) -> None:
    write_text("chat.yaml", set_line(SINGLE, 2, 'name: "  Team \t  chat  "'))
    assert load_catalog(kdir)["team-chat"].name == "Team chat"


# --- YAML-level errors -------------------------------------------------------------------


def test_yaml_syntax_error_has_path_and_line(kdir: Path, write_text) -> None:
    path = write_text("broken.yaml", set_line(SINGLE, 3, "summary: a: b: c"))
    report = report_for(kdir)
    assert report.catalog is None
    problem = one(report, "yaml")
    assert (problem.path, problem.line) == (str(path), 3)
    assert problem.is_error


def test_tab_indentation_is_a_yaml_error_on_its_line(kdir: Path, write_text) -> None:
    path = write_text("tabs.yaml", "id: a\nname: b\n\tsummary: c\n")
    problem = one(report_for(kdir), "yaml")
    assert (problem.path, problem.line) == (str(path), 3)


def test_python_tag_is_an_error_and_never_executed(kdir: Path, tmp_path: Path,
                                                   write_text) -> None:
    marker = tmp_path / "PWNED"
    path = write_text("evil.yaml",
                      f'id: evil\nname: !!python/object/apply:os.system ["touch {marker}"]\n')
    root = write_text("evil-root.yaml",
                      f'!!python/object/apply:os.system ["touch {marker}"]\n')
    report = report_for(kdir)
    assert not marker.exists()
    assert report.catalog is None
    by_path = {p.path: p for p in only(report, "yaml")}
    assert by_path[str(path)].line == 2
    assert by_path[str(root)].line == 1
    assert "only plain YAML" in by_path[str(path)].message


def test_duplicate_key_in_a_mapping(kdir: Path, write_text) -> None:
    path = write_text("dup.yaml", SINGLE + "name: Another name\n")
    report = report_for(kdir)
    assert report.catalog is None
    problem = one(report, "name")
    assert (problem.path, problem.line) == (str(path), 13)
    assert "duplicate key" in problem.message


def test_duplicate_key_in_a_nested_mapping(kdir: Path, write_text) -> None:
    path = write_text("dup.yaml", set_line(SINGLE, 7, "  team: Again"))
    problem = one(report_for(kdir), "owner.team")
    assert (problem.path, problem.line) == (str(path), 7)
    assert "duplicate key" in problem.message


def test_non_utf8_file_names_the_line_of_the_bad_byte(kdir: Path) -> None:
    path = kdir / "latin1.yaml"
    path.write_bytes("id: cafe\nname: Caf\u00e9\n".encode("latin-1"))
    report = report_for(kdir)
    problem = one(report, "file")
    assert (problem.path, problem.line) == (str(path), 2)
    assert "UTF-8" in problem.message
    assert problem.is_error


def test_utf8_with_bom_is_accepted(kdir: Path) -> None:
    (kdir / "bom.yaml").write_bytes(b"\xef\xbb\xbf" + SINGLE.encode())
    assert "team-chat" in load_catalog(kdir)


def test_empty_file_is_a_warning_not_an_error(kdir: Path, write_text) -> None:
    empty = write_text("empty.yaml", "# nothing here yet\n")
    write_text("chat.yaml", SINGLE)
    report = report_for(kdir)
    assert report.catalog is not None
    assert len(report.catalog) == 1
    problem = one(report, "file")
    assert problem.severity is Severity.WARNING
    assert (problem.path, problem.line) == (str(empty), 1)
    assert report.warnings == (problem,)


@pytest.mark.parametrize(("content", "what"), [("just a sentence\n", "text"),
                                              ("42\n", "a number")])
def test_file_that_is_not_a_mapping(kdir: Path, write_text, content: str, what: str) -> None:
    path = write_text("odd.yaml", content)
    problem = one(report_for(kdir), "offering")
    assert (problem.path, problem.line) == (str(path), 1)
    assert problem.message == f"must be a mapping of fields, not {what}"


def test_a_file_that_is_a_list_is_told_to_start_with_offerings(kdir: Path, write_text) -> None:
    # The commonest first file: a list of offerings without the `offerings:` line above it.
    path = write_text("odd.yaml", "- id: a\n  name: A\n- id: b\n  name: B\n")
    problem = one(report_for(kdir), "offering")
    assert (problem.path, problem.line) == (str(path), 1)
    assert "start it with `offerings:`" in problem.message


def test_offerings_wrapper_with_unknown_top_level_key(kdir: Path, write_text) -> None:
    path = write_text("wrapped.yaml",
                      "x-owner-note: fine\n" + PAIR_HEAD + "extras: 1\n")
    report = report_for(kdir)
    assert report.catalog is None
    problem = one(report, "extras")
    assert (problem.path, problem.line) == (str(path), 10)
    assert "unknown top-level field" in problem.message
    assert not only(report, "x-owner-note")


def test_offerings_wrapper_must_hold_a_non_empty_list(kdir: Path, write_text) -> None:
    path = write_text("wrapped.yaml", "# header\nofferings: []\n")
    problem = one(report_for(kdir), "offerings")
    assert (problem.path, problem.line) == (str(path), 2)
    assert "non-empty list" in problem.message


# --- schema errors -----------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["id", "name", "summary", "kind", "owner", "request",
                                     "needs"])
def test_missing_required_field(kdir: Path, write_text, missing: str) -> None:
    item = [ln for ln in SECOND_ITEM if not ln.strip(" -").startswith(f"{missing}:")]
    if missing == "owner":
        item = [ln for ln in item if "team: T" not in ln]
    if missing == "id":
        item[0] = "  - " + item[0].strip()
    path = write_text("pair.yaml", PAIR_HEAD + "\n".join(item) + "\n")
    report = report_for(kdir)
    assert report.catalog is None
    problem = one(report, missing)
    assert problem.message == "required field is missing"
    # Located at the start of the offering that lacks it.
    assert (problem.path, problem.line) == (str(path), 9)


def test_missing_owner_team(kdir: Path, write_text) -> None:
    item = list(SECOND_ITEM)
    item[5] = '      contact: "#it-desk"'
    path = write_text("pair.yaml", PAIR_HEAD + "\n".join(item) + "\n")
    problem = one(report_for(kdir), "owner.team")
    assert (problem.path, problem.line) == (str(path), 13)
    assert problem.message == "required field is missing"


def test_each_missing_field_is_reported_once(kdir: Path, write_text) -> None:
    path = write_text("sparse.yaml", "id: sparse\nname: Sparse\n")
    report = report_for(kdir)
    rendered = [p.render() for p in report.problems]
    assert sorted(rendered) == sorted(
        f"{path}:1: {name}: required field is missing"
        for name in ("summary", "kind", "owner", "request", "needs"))


@pytest.mark.parametrize("value", ['""', '"   "', '"\t"'])
@pytest.mark.parametrize("where", [(2, "name", "name"), (3, "summary", "summary"),
                                   (6, "  team", "owner.team"), (11, "  -", "needs[0]")])
def test_empty_or_blank_text(kdir: Path, write_text, value: str,
                             where: tuple[int, str, str]) -> None:
    lineno, key, field = where
    sep = " " if key.endswith("-") else ": "
    path = write_text("blank.yaml", set_line(SINGLE, lineno, f"{key}{sep}{value}"))
    report = report_for(kdir)
    assert report.catalog is None
    problem = one(report, field)
    assert (problem.path, problem.line) == (str(path), lineno)
    assert problem.message == "must not be empty"


def test_empty_string_is_reported_once(kdir: Path, write_text) -> None:
    path = write_text("blank.yaml", set_line(SINGLE, 2, 'name: ""'))
    assert [p.render() for p in report_for(kdir).problems] == [
        f"{path}:2: name: must not be empty"]


@pytest.mark.parametrize("case", [
    (10, 'needs: "a single need"', "needs", "must be a list, not text"),
    (12, "keywords: {chat: yes}", "keywords", "must be a list, not a mapping"),
    (2, "name: 42", "name", "must be text, not a number"),
    (5, "owner: Collaboration", "owner", "must be a mapping, not text"),
])
def test_wrong_types(kdir: Path, write_text, case: tuple[int, str, str, str]) -> None:
    lineno, new, field, message = case
    text = set_line(SINGLE, lineno, new)
    if field == "owner":  # drop the nested lines of the block mapping
        text = "\n".join(ln for ln in text.splitlines() if not ln.startswith("  team")
                         and not ln.startswith("  contact")) + "\n"
    if field == "needs":
        text = text.replace("  - my team needs a place to chat\n", "")
    path = write_text("types.yaml", text)
    problem = one(report_for(kdir), field)
    assert (problem.path, problem.line) == (str(path), lineno)
    assert problem.message == message


def test_unknown_field_suggests_the_close_one(kdir: Path, write_text) -> None:
    path = write_text("typo.yaml", SINGLE.replace("owner:", "ownr:"))
    report = report_for(kdir)
    problem = one(report, "ownr")
    assert (problem.path, problem.line) == (str(path), 5)
    assert "unknown field" in problem.message
    assert "did you mean `owner`?" in problem.message
    assert one(report, "owner").message == "required field is missing"


def test_unknown_nested_field_suggests_the_close_one(kdir: Path, write_text) -> None:
    path = write_text("typo.yaml", set_line(SINGLE, 7, '  contct: "#it-collab"'))
    problem = one(report_for(kdir), "owner.contct")
    assert (problem.path, problem.line) == (str(path), 7)
    assert "did you mean `contact`?" in problem.message


def test_x_fields_are_accepted_everywhere(kdir: Path, write_text) -> None:
    text = SINGLE.replace("owner:\n", "owner:\n  x-cost-centre: 4711\n")
    text = text.replace("request:\n", "request:\n  x-form-version: 2\n")
    write_text("custom.yaml", "x-file-note: reviewed\n" + text
               + "x-cmdb-id: CI-0001\nx-tags: [a, b]\n")
    report = report_for(kdir)
    assert report.problems == ()
    assert report.catalog is not None
    assert "team-chat" in report.catalog


def test_bad_kind_suggests_product(kdir: Path, write_text) -> None:
    path = write_text("kind.yaml", set_line(SINGLE, 4, "kind: prodcut"))
    problem = one(report_for(kdir), "kind")
    assert (problem.path, problem.line) == (str(path), 4)
    assert "`product`" in problem.message and "`service`" in problem.message
    assert "did you mean `product`?" in problem.message


@pytest.mark.parametrize(("value", "hint"), [("retird", "did you mean `retired`?"),
                                             ("dead", None)])
def test_bad_lifecycle(kdir: Path, write_text, value: str, hint: str | None) -> None:
    path = write_text("life.yaml", SINGLE + f"lifecycle: {value}\n")
    problem = one(report_for(kdir), "lifecycle")
    assert (problem.path, problem.line) == (str(path), 13)
    assert "`live`, `pilot`, `retired`" in problem.message
    if hint:
        assert hint in problem.message
    else:
        assert "did you mean" not in problem.message


def test_http_url_asks_for_https(kdir: Path, write_text) -> None:
    path = write_text("url.yaml", set_line(SINGLE, 9, "  url: http://it.example.test/chat"))
    problem = one(report_for(kdir), "request.url")
    assert (problem.path, problem.line) == (str(path), 9)
    assert "must be an https:// link" in problem.message
    assert "http://" in problem.message


@pytest.mark.parametrize("url", ["not a link", "https:// spaced", "https://", "ftp:/x"])
def test_malformed_url(kdir: Path, write_text, url: str) -> None:
    path = write_text("url.yaml", set_line(SINGLE, 9, f'  url: "{url}"'))
    problem = one(report_for(kdir), "request.url")
    assert (problem.path, problem.line) == (str(path), 9)
    assert "https://" in problem.message
    assert repr(url) in problem.message


@pytest.mark.parametrize("contact", ["bob", "@bob", "#General Chat", "U12", "bob@localhost"])
def test_bad_contact(kdir: Path, write_text, contact: str) -> None:
    path = write_text("contact.yaml", set_line(SINGLE, 7, f'  contact: "{contact}"'))
    problem = one(report_for(kdir), "owner.contact")
    assert (problem.path, problem.line) == (str(path), 7)
    assert "Slack user ID" in problem.message
    assert repr(contact) in problem.message


@pytest.mark.parametrize("contact", ["U012AB3CD", "W012AB3CD", "S012AB3CD", "C012AB3CD",
                                     "#it-help", "it.help@example.test"])
def test_good_contacts(kdir: Path, write_text, contact: str) -> None:
    write_text("contact.yaml", set_line(SINGLE, 7, f'  contact: "{contact}"'))
    assert load_catalog(kdir)["team-chat"].owner.contact == contact


def test_request_needs_url_or_steps(kdir: Path, write_text) -> None:
    path = write_text("req.yaml", set_line(SINGLE, 9, "  x-note: neither"))
    problem = one(report_for(kdir), "request")
    assert (problem.path, problem.line) == (str(path), 8)
    assert problem.message == "needs a `url`, `steps` or a `form` (or several)"


def test_request_with_steps_only_is_fine(kdir: Path, write_text) -> None:
    write_text("req.yaml", set_line(SINGLE, 9, '  steps: "Ask in #it-collab"'))
    offering = load_catalog(kdir)["team-chat"]
    assert offering.request.url is None
    assert offering.request.steps == "Ask in #it-collab"


@pytest.mark.parametrize("bad_id", ["Team-Chat", "team_chat", "-team", "team chat", "tëam"])
def test_bad_slug_id(kdir: Path, write_text, bad_id: str) -> None:
    path = write_text("id.yaml", set_line(SINGLE, 1, f'id: "{bad_id}"'))
    problem = one(report_for(kdir), "id")
    assert (problem.path, problem.line) == (str(path), 1)
    assert "is not a valid id" in problem.message
    assert repr(bad_id) in problem.message


# --- cross-file rules --------------------------------------------------------------------


def test_duplicate_ids_across_files_name_both(kdir: Path, write_text) -> None:
    first = write_text("a.yaml", SINGLE)
    second = write_text("sub/b.yaml", "# comment\n" + SINGLE)
    report = report_for(kdir)
    assert report.catalog is None
    problem = one(report, "id")
    assert (problem.path, problem.line) == (str(second), 2)
    assert "duplicate id 'team-chat'" in problem.message
    assert f"{first}:1" in problem.message


def test_unknown_include_suggests_the_close_id(kdir: Path, write_text) -> None:
    path = write_text("pair.yaml", PAIR_HEAD + "\n".join(SECOND_ITEM)
                      + "\n    includes: [first, frist, zzz-unrelated]\n")
    report = report_for(kdir)
    assert report.catalog is None
    problems = {p.field: p for p in report.problems}
    assert set(problems) == {"includes[1]", "includes[2]"}
    assert problems["includes[1]"].line == 17
    assert problems["includes[1]"].path == str(path)
    assert "unknown offering id 'frist'" in problems["includes[1]"].message
    assert "did you mean `first`?" in problems["includes[1]"].message
    assert "did you mean" not in problems["includes[2]"].message


def test_self_include(kdir: Path, write_text) -> None:
    path = write_text("self.yaml", SINGLE + "includes:\n  - team-chat\n")
    problem = one(report_for(kdir), "includes[0]")
    assert (problem.path, problem.line) == (str(path), 14)
    assert "cannot include itself" in problem.message


def test_unknown_replaced_by_suggests_the_close_id(kdir: Path, write_text) -> None:
    path = write_text("pair.yaml", PAIR_HEAD + "\n".join(SECOND_ITEM)
                      + "\n    lifecycle: retired\n    replaced_by: firts\n")
    problem = one(report_for(kdir), "replaced_by")
    assert (problem.path, problem.line) == (str(path), 18)
    assert "unknown offering id 'firts'" in problem.message
    assert "did you mean `first`?" in problem.message


def test_replaced_by_itself(kdir: Path, write_text) -> None:
    path = write_text("self.yaml", SINGLE + "lifecycle: retired\nreplaced_by: team-chat\n")
    problem = one(report_for(kdir), "replaced_by")
    assert (problem.path, problem.line) == (str(path), 14)
    assert "cannot replace itself" in problem.message


def test_retired_without_replacement_is_only_a_warning(kdir: Path, write_text) -> None:
    path = write_text("old.yaml", SINGLE + "lifecycle: retired\n")
    report = report_for(kdir)
    assert report.catalog is not None
    assert report.catalog["team-chat"].is_retired
    problem = one(report, "lifecycle")
    assert problem.severity is Severity.WARNING
    assert (problem.path, problem.line) == (str(path), 13)
    out = io.StringIO()
    assert main(["check", "--knowledge", str(kdir)], out=out) == 0
    assert f"{path}:13: lifecycle: warning: retired without `replaced_by`" in out.getvalue()
    assert "ok: 1 offering in 1 file, 1 warning" in out.getvalue()


def test_replaced_by_on_a_live_offering_is_a_warning(kdir: Path, write_text) -> None:
    path = write_text("pair.yaml", PAIR_HEAD + "\n".join(SECOND_ITEM)
                      + "\n    replaced_by: first\n")
    report = report_for(kdir)
    assert report.catalog is not None
    problem = one(report, "replaced_by")
    assert problem.severity is Severity.WARNING
    assert (problem.path, problem.line) == (str(path), 17)


def test_replacement_chain_cycle(kdir: Path, write_catalogue, new_offering) -> None:
    path = write_catalogue([
        new_offering("live-one"),
        new_offering("old-a", lifecycle="retired", replaced_by="old-b"),
        new_offering("old-b", lifecycle="retired", replaced_by="old-a"),
    ])
    report = report_for(kdir)
    assert report.catalog is None
    problems = only(report, "replaced_by")
    assert len(problems) == 2
    text = path.read_text().splitlines()
    expected_lines = sorted(i for i, ln in enumerate(text, 1) if "replaced_by:" in ln)
    assert sorted(p.line for p in problems) == expected_lines
    assert all("never reaches a live offering" in p.message for p in problems)


def test_replacement_chain_reaching_a_live_offering_is_fine(kdir: Path, write_catalogue,
                                                           new_offering) -> None:
    write_catalogue([
        new_offering("oldest", lifecycle="retired", replaced_by="older"),
        new_offering("older", lifecycle="retired", replaced_by="current"),
        new_offering("current"),
    ])
    catalog = load_catalog(kdir)
    assert catalog.live_replacement(catalog["oldest"]) == catalog["current"]


# --- directories -------------------------------------------------------------------------


def test_empty_directory(kdir: Path) -> None:
    report = report_for(kdir)
    assert report.catalog is None
    problem = one(report, "knowledge")
    assert (problem.path, problem.line) == (str(kdir), 0)
    assert "no *.yaml or *.yml files" in problem.message


def test_missing_directory(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    report = report_for(missing)
    assert report.catalog is None
    problem = one(report, "knowledge")
    assert (problem.path, problem.line) == (str(missing), 0)
    assert "does not exist" in problem.message


def test_a_file_is_not_a_directory(kdir: Path, write_text) -> None:
    path = write_text("chat.yaml", SINGLE)
    problem = one(report_for(path), "knowledge")
    assert "is not a directory" in problem.message


def test_nested_directories_and_yml_suffix_are_read(kdir: Path, write_catalogue,
                                                    new_offering) -> None:
    write_catalogue([new_offering("top")], name="top.yaml")
    write_catalogue([new_offering("deep")], name="a/b/c/deep.yml")
    write_catalogue([new_offering("upper")], name="a/UPPER.YAML")
    (kdir / "README.md").write_text("not: [yaml", encoding="utf-8")
    (kdir / "notes.txt").write_text("id: [", encoding="utf-8")
    report = report_for(kdir)
    assert report.problems == ()
    assert report.catalog is not None
    assert {o.id for o in report.catalog} == {"top", "deep", "upper"}
    assert report.files == 3


def test_hidden_files_and_directories_are_ignored(kdir: Path, write_catalogue, write_text,
                                                  new_offering) -> None:
    write_catalogue([new_offering("visible")])
    write_text(".draft.yaml", "id: [broken\n")
    write_text(".git/config.yaml", "not valid: [\n")
    write_text("team/.cache/x.yaml", "- a list\n")
    report = report_for(kdir)
    assert report.problems == ()
    assert report.files == 1
    assert report.catalog is not None
    assert [o.id for o in report.catalog] == ["visible"]


def test_symlink_loop_does_not_hang_or_read_twice(kdir: Path, write_catalogue,
                                                  new_offering) -> None:
    write_catalogue([new_offering("only-once")], name="sub/one.yaml")
    (kdir / "sub" / "loop").symlink_to(kdir, target_is_directory=True)
    report = report_for(kdir)
    assert report.catalog is not None, [p.render() for p in report.problems]
    assert [o.id for o in report.catalog] == ["only-once"]


def test_self_referencing_file_link_is_a_read_error(kdir: Path, write_catalogue,
                                                    new_offering) -> None:
    write_catalogue([new_offering("fine")])
    loop = kdir / "loop.yaml"
    loop.symlink_to(loop)
    report = report_for(kdir)
    problem = one(report, "file")
    assert problem.path == str(loop)
    assert "cannot read file" in problem.message


def test_all_problems_are_collected_in_one_pass(kdir: Path, write_text) -> None:
    text = set_line(SINGLE, 4, "kind: prodcut")
    text = set_line(text, 9, "  url: http://it.example.test/chat")
    text = text.replace("keywords:", "keywrds:")
    path = write_text("three.yaml", text)
    other = write_text("other.yaml", "id: [unclosed\n")
    report = report_for(kdir)
    mine = [p for p in report.problems if p.path == str(path)]
    assert [(p.line, p.field) for p in mine] == [(4, "kind"), (9, "request.url"),
                                                 (12, "keywrds")]
    assert any(p.path == str(other) for p in report.problems)
    assert len(report.errors) == 4


def test_load_catalog_raises_knowledge_error_with_every_problem(kdir: Path,
                                                               write_text) -> None:
    text = set_line(SINGLE, 4, "kind: prodcut")
    text = set_line(text, 9, "  url: http://it.example.test/chat")
    path = write_text("two.yaml", text)
    write_text("empty.yaml", "")
    with pytest.raises(KnowledgeError) as caught:
        load_catalog(kdir)
    problems = caught.value.problems
    assert [(p.path, p.line, p.field) for p in problems if p.is_error] == [
        (str(path), 4, "kind"), (str(path), 9, "request.url")]
    assert any(not p.is_error for p in problems)  # the warning travels too
    assert str(caught.value).startswith(f"{path}:4: kind: ")
    assert str(caught.value).endswith("(and 1 more)")


def test_problem_render_format(kdir: Path, write_text) -> None:
    path = write_text("kind.yaml", set_line(SINGLE, 4, "kind: prodcut"))
    problem = one(report_for(kdir), "kind")
    assert re.fullmatch(rf"{re.escape(str(path))}:4: kind: must be one of .+", problem.render())
    warning = Problem("k/a.yaml", 3, "lifecycle", "retired", Severity.WARNING)
    assert warning.render() == "k/a.yaml:3: lifecycle: warning: retired"
    assert Problem("k/a.yaml", 7, "name", "must not be empty").render() == (
        "k/a.yaml:7: name: must not be empty")


def test_alias_expansion_does_not_blow_up(tmp_path: Path) -> None:
    """A few hundred bytes of nested YAML aliases ("billion laughs") must not make the loader
    expand them: run in a child limited to 512 MB of address space."""
    kdir = tmp_path / "laughs"
    kdir.mkdir()
    lines = ['x-a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"x-a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    (kdir / "laughs.yaml").write_text("\n".join(lines) + "\n" + SINGLE, encoding="utf-8")
    script = textwrap.dedent(f"""
        from bot.catalogue.loader import check_knowledge
        report = check_knowledge({str(kdir)!r})
        print("done", len(report.problems))
    """)

    def limit_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (512 * 1024**2, 512 * 1024**2))

    env = {k: v for k, v in os.environ.items() if not k.startswith("CONCIERGE_")}
    proc = subprocess.run([sys.executable, "-c", script], preexec_fn=limit_memory,
                          capture_output=True, text=True, env=env, check=False)
    assert "MemoryError" not in proc.stderr
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("done")


# --- the catalogue -----------------------------------------------------------------------


def test_catalogue_preserves_file_order(kdir: Path, write_catalogue, new_offering) -> None:
    write_catalogue([new_offering("zulu"), new_offering("alpha")], name="a.yaml")
    write_catalogue([new_offering("mike")], name="b.yaml")
    write_catalogue([new_offering("bravo"), new_offering("yankee")], name="c/d.yaml")
    catalog = load_catalog(kdir)
    assert [o.id for o in catalog] == ["zulu", "alpha", "mike", "bravo", "yankee"]
    assert catalog.root == str(kdir)


def test_catalog_diff(tmp_path: Path, write_catalogue, new_offering) -> None:
    old_dir, new_dir = tmp_path / "old", tmp_path / "new"
    write_catalogue([new_offering("kept"), new_offering("edited"), new_offering("dropped"),
                     new_offering("moved")], directory=old_dir)
    write_catalogue([new_offering("kept"), new_offering("edited", summary="Now different."),
                     new_offering("fresh")], directory=new_dir)
    # Moving an offering to another file (another source line) is not a change.
    write_catalogue([new_offering("moved")], name="other.yaml", directory=new_dir)
    old, new = load_catalog(old_dir), load_catalog(new_dir)
    diff = old.diff(new)
    assert diff.added == ("fresh",)
    assert diff.removed == ("dropped",)
    assert diff.changed == ("edited",)
    assert not diff.is_empty
    assert diff.summary() == "added 1: fresh; removed 1: dropped; changed 1: edited"
    same = old.diff(load_catalog(old_dir))
    assert same.is_empty
    assert same.summary() == "no offerings changed"


def test_catalog_lookup(kdir: Path, write_catalogue, new_offering) -> None:
    write_catalogue([new_offering("one"), new_offering("two", category="Devices")])
    catalog: Catalog = load_catalog(kdir)
    assert "one" in catalog
    assert "three" not in catalog
    assert catalog.get("three") is None
    assert catalog["two"].category == "Devices"
    with pytest.raises(KeyError):
        catalog["three"]
    assert list(catalog.categories()) == ["Devices", "Other"]


@pytest.mark.parametrize(("field", "value"), [
    ("id", "password-reset\n"),
    ("owner", {"team": "T", "contact": "#it-help\n"}),
    ("owner", {"team": "T", "contact": "U012AB3CD\n"}),
    ("request", {"url": "https://it.example.test/reset\n"}),
    ("replaced_by", "password-reset\n"),
    ("includes", ["password-reset\n"]),
    ("request", {"form": [{"label": "Which?", "id": "which\n"}],
                 "deliver_to": {"channel": "#it-help\n"}}),
], ids=["id", "contact-channel", "contact-user", "url", "replaced_by", "includes",
        "form-ids"])
def test_patterns_match_the_whole_value_not_up_to_a_final_newline(
        write_catalogue, new_offering, kdir: Path, field: str, value: object) -> None:
    # JSON Schema patterns are ECMA-262: `$` is the end of the text. Python's `re.search`
    # also lets `$` match before a final newline, which let these values through.
    extra = {"lifecycle": "retired"} if field == "replaced_by" else {}
    write_catalogue([new_offering("password-reset"),
                     new_offering("other", **{field: value}, **extra)])
    report = check_knowledge(kdir)
    assert report.catalog is None
    assert report.errors, "a value ending in a newline passed its pattern"
    assert all("\\n" in p.message or "must not be empty" not in p.message
               for p in report.errors)


def test_an_id_with_a_final_newline_is_not_a_second_password_reset(write_text,
                                                                     kdir: Path) -> None:
    write_text("reset.yaml", """
        offerings:
          - id: password-reset
            name: Password reset
            summary: A new password.
            kind: service
            owner: {team: Identity}
            request: {steps: call the desk}
            needs: [I forgot my password]
          - id: "password-reset\\n"
            name: Password reset (copy)
            summary: A new password.
            kind: service
            owner: {team: Identity}
            request: {steps: call the desk}
            needs: [I forgot my password]
        """)
    [problem] = check_knowledge(kdir).errors
    assert (problem.line, problem.field) == (9, "id")
    assert problem.message.startswith("'password-reset\\n' is not a valid id")
