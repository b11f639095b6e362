"""Adding needs to knowledge files as text: comments, order and line endings kept, quoting
right, the result loads, and a patch that `patch -p1` applies."""

from __future__ import annotations

import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.catalogue.loader import check_knowledge, load_catalog
from bot.catalogue.needs_edit import add_needs, check_plan, plan_edits, render_item
from bot.errors import EditError

FILE = textwrap.dedent("""\
    # Devices, owned by Workplace Services.
    offerings:
      - id: laptop
        name: Laptop
        summary: A laptop.
        kind: product
        owner: {team: Workplace, contact: "#workplace"}
        request: {url: "https://it.example.test/laptop"}
        needs:
          - my laptop is old   # the commonest ask
          - >
            a folded need that
            takes two lines

        # keywords follow
        keywords: [laptop]
      - id: dock
        name: Dock
        summary: A dock.
        kind: product
        owner: {team: Workplace}
        request: {url: "https://it.example.test/dock"}
        needs: [I need a dock, "a second screen"]  # flow style
      - id: mouse
        name: Mouse
        summary: A mouse.
        kind: product
        owner: {team: Workplace}
        request: {url: "https://it.example.test/mouse"}
        needs:
        - my mouse is broken
    """)


def needs_of(text: str, offering_id: str) -> list[str]:
    data = yaml.safe_load(text)
    [offering] = [o for o in data["offerings"] if o["id"] == offering_id]
    return list(offering["needs"])


def test_block_list_gets_lines_after_its_last_item_everything_else_kept() -> None:
    edited = add_needs(FILE, "laptop", ["the screen is cracked", "# not a comment"])
    assert needs_of(edited, "laptop")[-2:] == ["the screen is cracked", "# not a comment"]
    old, new = FILE.splitlines(), edited.splitlines()
    # Exactly two lines inserted, above the blank line the folded item swallowed.
    assert new[:13] == old[:13]
    assert new[13:15] == ["      - the screen is cracked", "      - '# not a comment'"]
    assert new[15:] == old[13:]


def test_flow_list_gets_items_before_its_bracket() -> None:
    edited = add_needs(FILE, "dock", ["a dock for: two screens"])
    line = next(x for x in edited.splitlines() if x.strip().startswith("needs: [I need"))
    assert line == ('    needs: [I need a dock, "a second screen", \'a dock for: two screens\']'
                    '  # flow style')
    assert needs_of(edited, "dock") == ["I need a dock", "a second screen",
                                        "a dock for: two screens"]


def test_an_unindented_list_keeps_its_own_indent() -> None:
    edited = add_needs(FILE, "mouse", ["it double-clicks by itself"])
    assert edited.endswith("    - my mouse is broken\n    - it double-clicks by itself\n")


def test_crlf_files_stay_crlf_and_a_missing_last_newline_is_added() -> None:
    crlf = FILE.replace("\n", "\r\n").removesuffix("\r\n")
    edited = add_needs(crlf, "mouse", ["it squeaks"])
    assert edited == crlf + "\r\n    - it squeaks\r\n"
    assert needs_of(edited, "mouse") == ["my mouse is broken", "it squeaks"]


def test_a_single_offering_file(tmp_path: Path) -> None:
    single = textwrap.dedent("""\
        id: chat
        name: Chat
        summary: Chat.
        kind: service
        owner: {team: Collab}
        request: {url: "https://it.example.test/chat"}
        needs:
          - my team needs a chat   # keep
        """)
    edited = add_needs(single, "chat", ["a place to talk"])
    assert edited == single + "  - a place to talk\n"


@pytest.mark.parametrize(("text", "offering", "message"), [
    (FILE, "nope", "no offering with this id"),
    ("common: &n [a need]\noffering: 1\n", "x", "no offering with this id"),
    ("offerings:\n  - id: x\n    needs: &n [one]\n  - id: y\n    needs: *n\n", "y",
     "alias of the list at line 3"),
    ("offerings: [\n", "x", "does not parse"),
])
def test_what_cannot_be_edited_in_place_is_refused(text: str, offering: str,
                                                   message: str) -> None:
    with pytest.raises(EditError, match=message) as caught:
        add_needs(text, offering, ["a need"], path="k/x.yaml")
    assert caught.value.path == "k/x.yaml" and caught.value.offering == offering


@settings(max_examples=200, deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1).filter(
    lambda s: s.strip() == s and s.strip() != ""))
def test_any_phrase_reads_back_as_written(phrase: str) -> None:
    for offering in ("laptop", "dock"):
        assert needs_of(add_needs(FILE, offering, [phrase]), offering)[-1] == phrase
    assert yaml.safe_load(f"- {render_item(phrase)}") == [phrase]


@pytest.fixture
def knowledge(tmp_path: Path) -> Path:
    root = tmp_path / "knowledge"
    (root / "team").mkdir(parents=True)
    (root / "team" / "devices.yaml").write_text(FILE, encoding="utf-8")
    return root


def test_a_plan_is_one_patch_that_patch_applies_and_check_accepts(knowledge: Path,
                                                                  tmp_path: Path) -> None:
    catalog = load_catalog(knowledge, cache=False)
    plan = plan_edits(catalog, {"laptop": ["the screen is cracked"], "dock": ["dock please"],
                                "mouse": ()})
    assert not plan.refused
    assert [s.offering_id for s in plan.snippets] == ["laptop", "dock"]
    laptop, dock = plan.snippets
    assert (laptop.line, laptop.replaces, laptop.lines) == (
        13, False, ("      - the screen is cracked",))
    assert dock.replaces and dock.lines[0].startswith("    needs: [I need a dock, ")
    assert yaml.safe_load(laptop.text()) == ["the screen is cracked"]
    assert check_plan(catalog, plan).catalog is not None
    before = (knowledge / "team" / "devices.yaml").read_bytes()

    patch = plan.patch()
    assert patch.startswith("--- a/knowledge/team/devices.yaml\n+++ b/knowledge/team/")
    assert all(line[0] in " +@-" for line in patch.splitlines()[2:])
    assert not [line for line in patch.splitlines()[2:] if line.startswith("-")
                and not line.startswith("-    needs: [I need a dock")]
    # Nothing was written by planning: the owners apply it.
    assert (knowledge / "team" / "devices.yaml").read_bytes() == before
    applied = tmp_path / "applied"
    shutil.copytree(knowledge, applied / "knowledge")
    if shutil.which("patch") is None:
        pytest.skip("no patch program")
    subprocess.run(["patch", "-p1", "--quiet"], cwd=applied, input=patch, text=True,
                   check=True)
    after = load_catalog(applied / "knowledge", cache=False)
    assert after["laptop"].needs[-1] == "the screen is cracked"
    assert after["dock"].needs[-1] == "dock please"
    assert "# keywords follow" in (applied / "knowledge/team/devices.yaml").read_text()


def test_check_plan_reports_the_real_file_names(knowledge: Path) -> None:
    catalog = load_catalog(knowledge, cache=False)
    plan = plan_edits(catalog, {"laptop": ["x"]})
    (knowledge / "team" / "broken.yaml").write_text("id: [\n", encoding="utf-8")
    report = check_plan(catalog, plan)
    assert report.catalog is None
    assert [p.path for p in report.errors] == [str(knowledge / "team" / "broken.yaml")]
    assert check_knowledge(knowledge, cache=False).catalog is None  # the original, too


def test_an_offering_gone_from_its_file_is_refused_not_guessed(knowledge: Path) -> None:
    catalog = load_catalog(knowledge, cache=False)
    path = knowledge / "team" / "devices.yaml"
    path.write_text(FILE.replace("id: mouse", "id: mouse-2"), encoding="utf-8")
    plan = plan_edits(catalog, {"mouse": ["squeaks"], "laptop": ["slow"]})
    assert [e.offering for e in plan.refused] == ["mouse"]
    assert [s.offering_id for s in plan.snippets] == ["laptop"]
