"""Adding needs to an offering in the text of its knowledge file, comments and order kept.

Owners review suggested needs as a change to their YAML, so the change must look like one
they would have typed: the new lines go right after the offering's last need, indented
like it, and nothing else in the file moves. A YAML dumper cannot do that (it drops
comments and reflows the file), so this edits the text at the place the parser's marks
point to (the same marks `bot.catalogue.loader` keeps for its line numbers):

    needs:                      block list: new `- item` lines after the last item's
      - I need a new laptop     last line (blank lines a folded item swallowed are
      - my laptop is slow       skipped), with that item's indent and dash spacing
    + - laptop takes ages to boot
    needs: [a, b]          ──▶  needs: [a, b, "new one"]   (flow list: before its `]`)

Each new item is written by PyYAML's emitter as a one-item list, so quoting follows YAML's
rules (a need starting with `#`, or holding `: `, comes out quoted). The edited text is
parsed again and must give the old needs plus the new ones, or the edit is refused:
a patch is never offered that would not load. Nothing here writes a file.
"""

from __future__ import annotations

import difflib
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from bot.catalogue.loader import LoadReport, check_knowledge
from bot.catalogue.models import Catalog, Offering
from bot.errors import EditError

_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_ITEM_PREFIX = re.compile(r"^(?P<indent>[ \t]*)-(?P<gap>[ \t]+)")
_NO_WRAP = 1 << 30


@dataclass(frozen=True, slots=True)
class FileEdit:
    """One knowledge file before and after its needs were added."""

    path: str
    """The path as the loader saw it."""
    before: str
    after: str

    def diff(self, label: str | None = None) -> str:
        """A unified diff (`a/…` and `b/…` paths, as `git apply` and `patch -p1` take)."""
        name = (label or self.path).lstrip("/")
        out = []
        for line in difflib.unified_diff(_lines(self.before), _lines(self.after),
                                         fromfile=f"a/{name}", tofile=f"b/{name}"):
            # difflib leaves a last line without its newline as it is; patch tools need
            # the marker, or they would join it with the next line of the diff.
            out.append(line if line.endswith("\n") else f"{line}\n\\ No newline at end of file\n")
        return "".join(out)


def _lines(text: str) -> list[str]:
    # Patch tools split on \n alone (str.splitlines would also split on form feeds).
    return [part for part in re.split(r"(?<=\n)", text) if part]


def render_item(phrase: str, *, flow: bool = False) -> str:
    """`phrase` as one YAML list item's scalar, quoted where YAML needs it."""
    dumped = yaml.safe_dump([phrase], allow_unicode=True, width=_NO_WRAP,
                            default_flow_style=flow)
    text = dumped.strip()
    if flow:
        return text[1:-1]  # `[item]`
    return text.removeprefix("- ")


def add_needs(text: str, offering_id: str, phrases: Sequence[str], *,
              path: str = "<text>") -> str:
    """`text` (a knowledge file) with `phrases` appended to the `needs` of `offering_id`.

    Raises `EditError` when the offering or its needs list cannot be edited in place (not
    in this file, needs given by an alias, the file does not parse).
    """
    if not phrases:
        return text
    node = _compose(text, path, offering_id)
    offering = _find_offering(node, offering_id, path)
    key, needs = _needs_node(offering, offering_id, path)
    before = [str(item.value) for item in needs.value]
    if needs.flow_style:
        edited = _add_flow(text, needs, phrases)
    else:
        edited = _add_block(text, needs, phrases)
    after_node = _find_offering(_compose(edited, path, offering_id), offering_id, path)
    _, after_needs = _needs_node(after_node, offering_id, path)
    got = [str(item.value) for item in after_needs.value]
    if got != [*before, *phrases]:  # pragma: no cover - a bug here must not reach a patch
        raise EditError(f"the edited file would read needs {got!r}", path=path,
                        line=key.start_mark.line + 1, offering=offering_id)
    return edited


def _compose(text: str, path: str, offering_id: str) -> yaml.Node:
    loader = _SAFE_LOADER(text)
    try:
        node = loader.get_single_node()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise EditError(f"the file does not parse ({getattr(exc, 'problem', exc)})",
                        path=path, line=mark.line + 1 if mark else 1,
                        offering=offering_id) from exc
    finally:
        loader.dispose()
    if node is None:
        raise EditError("the file is empty", path=path, line=1, offering=offering_id)
    return node


def _value(mapping: yaml.MappingNode, name: str) -> tuple[yaml.Node, yaml.Node] | None:
    for key, value in mapping.value:
        if isinstance(key, yaml.ScalarNode) and key.value == name:
            return key, value
    return None


def _find_offering(root: yaml.Node, offering_id: str, path: str) -> yaml.MappingNode:
    candidates: list[yaml.Node] = [root]
    if isinstance(root, yaml.MappingNode):
        listed = _value(root, "offerings")
        if listed is not None and isinstance(listed[1], yaml.SequenceNode):
            candidates = list(listed[1].value)
    for node in candidates:
        if isinstance(node, yaml.MappingNode):
            found = _value(node, "id")
            if found is not None and getattr(found[1], "value", None) == offering_id:
                return node
    raise EditError("no offering with this id in the file", path=path, line=1,
                    offering=offering_id)


def _needs_node(offering: yaml.MappingNode, offering_id: str,
                path: str) -> tuple[yaml.Node, yaml.SequenceNode]:
    key, needs = _value(offering, "needs") or (offering, None)
    if not isinstance(needs, yaml.SequenceNode) or not needs.value:
        raise EditError("the offering has no list of needs to add to", path=path,
                        line=key.start_mark.line + 1, offering=offering_id)
    if needs.start_mark.index < key.end_mark.index:
        # `needs: *common`: the list lives at its anchor, shared with other offerings.
        raise EditError(f"needs is an alias of the list at line {needs.start_mark.line + 1}; "
                        "add the needs there by hand", path=path,
                        line=key.start_mark.line + 1, offering=offering_id)
    return key, needs


def _newline(text: str) -> str:
    return "\r\n" if "\r\n" in text else "\n"


# The line breaks YAML counts in its marks (1.1: also NEL and the Unicode separators);
# str.splitlines would also break at form feeds and so miscount.
_BREAKS = "\r\n\x85\u2028\u2029"
_YAML_LINE = re.compile(r"[^\r\n\x85\u2028\u2029]*(?:\r\n|[\r\n\x85\u2028\u2029])"
                        r"|[^\r\n\x85\u2028\u2029]+$")


def _add_block(text: str, needs: yaml.SequenceNode, phrases: Sequence[str]) -> str:
    lines = _YAML_LINE.findall(text)
    last = needs.value[-1]
    end = last.end_mark.line if last.end_mark.column > 0 else last.end_mark.line - 1
    # A folded or literal item takes the blank lines after it; new items go above them.
    while end > last.start_mark.line and not lines[end].strip():
        end -= 1
    prefix = _ITEM_PREFIX.match(lines[last.start_mark.line])
    lead = (prefix.group("indent") + "-" + prefix.group("gap") if prefix
            else " " * needs.start_mark.column + "- ")
    newline = _newline(text)
    if lines[end] == lines[end].rstrip(_BREAKS):  # the last line of a file without one
        lines[end] += newline
    added = [f"{lead}{render_item(p)}{newline}" for p in phrases]
    return "".join([*lines[:end + 1], *added, *lines[end + 1:]])


def _add_flow(text: str, needs: yaml.SequenceNode, phrases: Sequence[str]) -> str:
    at = needs.value[-1].end_mark.index
    added = "".join(f", {render_item(p, flow=True)}" for p in phrases)
    return text[:at] + added + text[at:]


# --- a whole catalogue's worth of additions ------------------------------------------------


@dataclass(frozen=True, slots=True)
class Snippet:
    """What to paste for one offering: where, and the lines (the same as the patch adds)."""

    offering_id: str
    path: str
    line: int
    """The line after which the new lines go (or the line they replace, for a flow list)."""
    replaces: bool
    lines: tuple[str, ...]

    root: str = ""
    """The knowledge directory, to name the file as the patch does."""

    def text(self) -> str:
        where = (f"replace line {self.line} (its `needs:` list) with" if self.replaces
                 else f"add after line {self.line} (the last of its `needs:`)")
        return "\n".join([f"# {shown_path(self.path, self.root)}: offering "
                          f"`{self.offering_id}`, {where}:", *self.lines])


def shown_path(path: str, root: str = "") -> str:
    """`path` as a patch names it: relative to the working directory when it lies below it
    (`git apply` there), else relative to the folder holding the knowledge directory
    `root` (`knowledge/devices.yaml`), else as it is."""
    resolved = Path(path).resolve()
    for base in (Path.cwd(), *((Path(root).resolve().parent,) if root else ())):
        try:
            return str(resolved.relative_to(base.resolve()))
        except ValueError:
            continue
    return path


@dataclass(frozen=True, slots=True)
class EditPlan:
    """The edits that add needs to a catalogue's files, and the offerings that could not
    be edited in place (with why)."""

    files: tuple[FileEdit, ...]
    snippets: tuple[Snippet, ...]
    refused: tuple[EditError, ...]
    root: str = ""

    def patch(self) -> str:
        """Every file's diff, in file order (paths named by `shown_path`)."""
        return "".join(f.diff(shown_path(f.path, self.root)) for f in self.files)


def plan_edits(catalog: Catalog, additions: Mapping[str, Sequence[str]]) -> EditPlan:
    """Text edits adding `additions` (offering id → new needs) to the files the offerings
    were loaded from, as they are on disk now."""
    by_path: dict[str, list[Offering]] = {}
    refused: list[EditError] = []
    for offering_id, phrases in additions.items():
        offering = catalog.get(offering_id)
        if not phrases or offering is None:
            continue
        if offering.source is None:
            refused.append(EditError("not loaded from a file", path="?", line=0,
                                     offering=offering_id))
            continue
        by_path.setdefault(offering.source.path, []).append(offering)
    files: list[FileEdit] = []
    snippets: list[Snippet] = []
    for path, offerings in sorted(by_path.items()):
        try:
            # Bytes, not text mode: newline translation would turn CRLF files into LF ones.
            original = Path(path).read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            refused.extend(EditError(f"cannot read the file ({exc})", path=path, line=0,
                                     offering=o.id) for o in offerings)
            continue
        bom = "\ufeff" if original.startswith("\ufeff") else ""
        text = original.removeprefix(bom)
        current = text
        for offering in sorted(offerings, key=lambda o: o.source.line if o.source else 0):
            phrases = tuple(additions[offering.id])
            try:
                alone = add_needs(text, offering.id, phrases, path=path)
                current = add_needs(current, offering.id, phrases, path=path)
            except EditError as exc:
                refused.append(exc)
                continue
            snippets.append(_snippet(offering.id, path, text, alone, catalog.root))
        if current != text:
            files.append(FileEdit(path, bom + text, bom + current))
    return EditPlan(tuple(files), tuple(snippets), tuple(refused), catalog.root)


def _snippet(offering_id: str, path: str, before: str, after: str, root: str) -> Snippet:
    old, new = _YAML_LINE.findall(before), _YAML_LINE.findall(after)
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    changed = [op for op in matcher.get_opcodes() if op[0] != "equal"]
    tag, i1, _, j1, j2 = changed[0]
    lines = tuple(line.rstrip(_BREAKS) for line in new[j1:j2])
    if tag == "insert":
        return Snippet(offering_id, path, i1, False, lines, root)
    return Snippet(offering_id, path, i1 + 1, True, lines, root)


def check_plan(catalog: Catalog, plan: EditPlan) -> LoadReport:
    """`concierge check` on a copy of the knowledge directory with the plan applied.

    Problems name the real files, not the copy's.
    """
    root = Path(catalog.root)
    with tempfile.TemporaryDirectory(prefix="concierge-suggest-") as scratch:
        copy = Path(scratch) / "knowledge"
        shutil.copytree(root, copy, symlinks=False,
                        ignore=shutil.ignore_patterns(".*"))
        for edit in plan.files:
            target = copy / Path(edit.path).resolve().relative_to(root.resolve())
            target.write_bytes(edit.after.encode("utf-8"))
        report = check_knowledge(copy, cache=False)
        prefix = str(copy)
    problems = tuple(replace(p, path=str(root) + p.path[len(prefix):])
                     if p.path.startswith(prefix) else p for p in report.problems)
    return replace(report, problems=problems)
