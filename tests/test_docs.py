"""The README and docs/ as a reader meets them: every relative link and anchor leads somewhere,
and every `concierge` command shown exists, with the options shown.

Anchors follow GitHub's rule for heading ids (lower case, punctuation dropped, spaces to
hyphens, a repeated heading numbered), so a link that works here works on GitHub too.
"""

from __future__ import annotations

import argparse
import itertools
import re
from collections import Counter
from pathlib import Path

import pytest

from bot.cli.main import build_parser

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)


def _prose(page: Path) -> str:
    """The page without its code blocks and inline code, where brackets are not links."""
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    return re.sub(r"`[^`\n]*`", "", text)


def anchors(page: Path) -> set[str]:
    seen: Counter[str] = Counter()
    found = set()
    for line in FENCE.sub("", page.read_text(encoding="utf-8")).splitlines():
        heading = re.match(r"#{1,6} (.*)", line)
        if not heading:
            continue
        slug = re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower()).replace(" ", "-")
        found.add(slug if not seen[slug] else f"{slug}-{seen[slug]}")
        seen[slug] += 1
    return found


def links(page: Path) -> list[str]:
    return [target for target in LINK.findall(_prose(page))
            if not re.match(r"[a-z]+:", target)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_relative_link_and_anchor_resolves(page: Path) -> None:
    broken = []
    for target in links(page):
        path, _, anchor = target.partition("#")
        goal = (page.parent / path).resolve() if path else page
        if not goal.exists():
            broken.append(f"{target}: no such file")
        elif anchor and goal.suffix == ".md" and anchor not in anchors(goal):
            broken.append(f"{target}: no heading #{anchor} in {goal.name}")
    assert not broken, f"{page.name}: " + "; ".join(broken)


def test_the_pages_are_linked_from_the_front_door() -> None:
    linked = {(REPO / target.partition("#")[0]).resolve() for target in links(REPO / "README.md")}
    assert set(PAGES[1:]) <= linked, "a docs/ page that the README does not lead to"


def test_the_anchor_rule_matches_github() -> None:
    page = REPO / "README.md"
    assert "quick-start" in anchors(page)


# A command line in a fenced block or inline code: `concierge …` at its start (after a prompt
# or a path to the virtualenv), not `/concierge …`, which is the slash command in Slack.
COMMAND = re.compile(r"(?:^|\$ |[\w./]*/bin/|&& )concierge((?: [^\s`#&<>]+)*)", re.M)
CODE = re.compile(r"^(```|~~~)[^\n]*\n(.*?)^\1|`([^`\n]+)`", re.M | re.S)


def documented_commands() -> set[tuple[str, ...]]:
    """Each `concierge` command line shown in the README and docs/, as its words: placeholders
    such as FILE or [--days N] dropped, `stats|gaps` (a table's `stats\\|gaps`) one each."""
    found = set()
    for page in PAGES:
        for match in CODE.finditer(page.read_text(encoding="utf-8")):
            code = (match.group(2) or match.group(3)).replace("\\|", "|")
            for command in COMMAND.finditer(code):
                line = re.sub(r"\[[^\]]*\]", " ", command.group(1)).split(" | ")[0]
                words = [w.strip("\"'") for w in line.split()]
                words = [w for w in words if w and not re.fullmatch(r"[A-Z_.]+", w)]
                alternatives = [w.split("|") for w in words]
                found.update(itertools.product(*alternatives))
    return found


def resolve(words: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """The subcommand path the words name, and the options they use that it lacks."""
    parser = build_parser()
    path: list[str] = []
    for word in words:
        subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subparsers or word.startswith("-"):
            break
        if word not in subparsers[0].choices:
            return path + [word], []
        parser = subparsers[0].choices[word]
        path.append(word)
    options = {w.split("=")[0] for w in words if w.startswith("-")}
    return path, sorted(options - set(parser._option_string_actions))


def test_the_docs_show_commands() -> None:
    commands = documented_commands()
    assert ("check",) in commands and ("serve",) in commands


@pytest.mark.parametrize("words", sorted(documented_commands()), ids=" ".join)
def test_every_documented_command_exists_with_its_options(words: tuple[str, ...]) -> None:
    path, unknown = resolve(words)
    parser = build_parser()
    assert not unknown, f"concierge {' '.join(words)}: no option {unknown}"
    with pytest.raises(SystemExit) as done:  # its --help, as a reader would try first
        parser.parse_args([*path, "--help"])
    assert done.value.code == 0, f"concierge {' '.join(path)} does not exist"
