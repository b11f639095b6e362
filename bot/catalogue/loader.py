"""Read a knowledge directory into a `Catalog`, collecting every problem in one pass.

Each YAML file is parsed once with PyYAML's safe loader: the node tree keeps the
line of every key, the safe constructor turns it into plain data (an unknown tag
such as `!!python/object` is an error, never executed), the shipped JSON Schema
validates it, and cross-file rules (unique ids, references) run last. Only
offerings without errors become `Offering` values; raw dicts stop here.

Parsing and validating are most of the time a large catalogue takes to load, so a file
that passed both is remembered in the app's cache directory under a digest of its bytes
(`bot.catalogue.cache`): next time the same bytes skip straight to the cross-file rules,
which always run. A file with any problem is never remembered, so its problems are found
and reported again on every load, and an edited file has a new digest.
"""

from __future__ import annotations

import difflib
import errno
import hashlib
import json
import os
import re
import stat
import sys
import unicodedata
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError

from bot.catalogue import cache as catalog_cache
from bot.catalogue.cache import DiskCache
from bot.catalogue.models import (
    MAX_FORM_FIELDS,
    Catalog,
    DeliverTo,
    FieldType,
    FormField,
    Kind,
    KnownWebhooks,
    Lifecycle,
    Offering,
    Owner,
    Problem,
    RequestInfo,
    Severity,
    SourceRef,
)
from bot.errors import KnowledgeError
from bot.settings import cache_dir
from bot.wording import plural, printable

YAML_SUFFIXES = (".yaml", ".yml")
MAX_FILE_BYTES = 2_000_000
MAX_FILES = 20_000
MAX_NODES = 200_000

JsonPath = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class LoadReport:
    """The outcome of reading a knowledge directory: a catalogue when there were no errors."""

    catalog: Catalog | None
    problems: tuple[Problem, ...]
    files: int
    cached_files: int = 0
    """Files taken from the cache of validated files (unchanged since they last passed)."""

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.is_error)

    @property
    def warnings(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if not p.is_error)

    def verdict(self) -> str:
        """One line: `ok: 64 offerings in 12 files, 1 warning` or `2 errors, 0 warnings in
        3 files`."""
        files = plural(self.files, "file")
        if self.catalog is not None:
            warned = f", {plural(len(self.warnings), 'warning')}" if self.warnings else ""
            return f"ok: {plural(len(self.catalog), 'offering')} in {files}{warned}"
        return (f"{plural(len(self.errors), 'error')}, "
                f"{plural(len(self.warnings), 'warning')} in {files}")


def schema_path() -> Path:
    """The JSON Schema file shipped with the package (for editors and docs)."""
    return Path(str(resources.files("bot.catalogue") / "schema" / "offering.schema.json"))


@cache
def _schema() -> dict[str, Any]:
    with schema_path().open(encoding="utf-8") as fh:
        loaded: dict[str, Any] = json.load(fh)
    return loaded


@cache
def _offering_validator() -> Any:
    # References resolved once here rather than on every field of every offering: that lookup
    # was a third of validation time on a 10,000-offering catalogue.
    defs = _schema()["$defs"]
    return _Validator(_inline_refs(defs["offering"], defs))


def ecma_anchors(pattern: str) -> str:
    """A JSON Schema `pattern` (ECMA-262) as Python reads it: `$` outside a character class
    becomes `\\Z`. In ECMA-262 `$` is the end of the text; in Python it also matches
    before a final newline, so `id: "password-reset\\n"` passed `^[a-z0-9-]*$`, loaded
    beside `password-reset` and slipped past the duplicate-id rule."""
    out: list[str] = []
    in_class = escaped = False
    for ch in pattern:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
        elif ch == "$":
            out.append("\\Z")
            continue
        out.append(ch)
    return "".join(out)


@cache
def _pattern_regex(pattern: str) -> re.Pattern[str]:
    return re.compile(ecma_anchors(pattern))


def _whole_text_pattern(validator: Any, pattern: str, instance: Any,
                        schema: Mapping[str, Any]) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not _pattern_regex(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


# The shipped schema's validator, with `pattern` read the way editors (ECMA-262) read it.
_Validator = validators.extend(  # type: ignore[no-untyped-call]
    Draft202012Validator, {"pattern": _whole_text_pattern})


_ANNOTATIONS = frozenset({"description", "title", "$comment", "examples"})


def _inline_refs(node: Any, defs: Mapping[str, Any]) -> Any:
    """The schema with every local `#/$defs/...` reference replaced by its definition (the
    shipped schema's definitions are not recursive)."""
    if isinstance(node, list):
        return [_inline_refs(x, defs) for x in node]
    if not isinstance(node, dict):
        return node
    rest = {k: _inline_refs(v, defs) for k, v in node.items() if k != "$ref"}
    ref = node.get("$ref")
    if not (isinstance(ref, str) and ref.startswith("#/$defs/")):
        return rest if ref is None else {**rest, "$ref": ref}
    target = _inline_refs(defs[ref.removeprefix("#/$defs/")], defs)
    if set(target) & set(rest) - _ANNOTATIONS:
        return {**rest, "allOf": [target]}  # both constrain the same keyword: keep both
    return {**target, **rest}


def _offering_fields() -> tuple[str, ...]:
    return tuple(_schema()["$defs"]["offering"]["properties"])


def load_catalog(root: str | os.PathLike[str], *, cache: bool = True,
                 webhooks: KnownWebhooks | None = None) -> Catalog:
    """Load and validate; raise `KnowledgeError` carrying every problem if any is an error."""
    report = check_knowledge(root, cache=cache, webhooks=webhooks)
    if report.catalog is None:
        raise KnowledgeError(report.problems)
    return report.catalog


def check_knowledge(root: str | os.PathLike[str], *, cache: bool = True,
                    webhooks: KnownWebhooks | None = None) -> LoadReport:
    """Validate a knowledge directory and build the catalogue if it has no errors.

    With `cache`, files unchanged since they last passed are taken from the cache of
    validated files instead of being parsed and validated again. With `webhooks`, the
    webhook names that request forms deliver to are checked against those configured
    (the environment is not the catalogue's business: the caller says what it knows).
    """
    base = Path(root)
    problems: list[Problem] = []
    if not base.is_dir():
        what = "does not exist" if not base.exists() else "is not a directory"
        problem = Problem(str(base), 0, "knowledge", f"the knowledge directory {what}")
        return LoadReport(None, (problem,), 0)
    files = list(knowledge_files(base, problems))
    validated = _ValidatedFiles.open(base) if cache else None
    raw: list[_RawOffering] = []
    inside = base.resolve()
    for path in files:
        raw.extend(_read_file(path, problems, validated, inside=inside))
    if validated is not None:
        validated.save()
    if not files and not problems:
        problems.append(Problem(str(base), 0, "knowledge", "no *.yaml or *.yml files found"))
    offerings = _cross_check(raw, problems, webhooks)
    problems.sort(key=lambda p: (p.path, p.line, p.severity != Severity.ERROR))
    hits = validated.hits if validated is not None else 0
    if any(p.is_error for p in problems):
        return LoadReport(None, tuple(problems), len(files), hits)
    return LoadReport(Catalog(tuple(offerings), root=str(base)), tuple(problems), len(files),
                      hits)


def knowledge_files(base: Path, problems: list[Problem]) -> Iterator[Path]:
    """The knowledge files under `base` that the loader reads, in reading order."""
    # os.walk does not follow directory symlinks, so a symlink loop cannot trap it.
    found = 0

    def unreadable(error: OSError) -> None:
        # Silently skipping a folder the process cannot list would serve a catalogue with
        # offerings missing, or report an unreadable knowledge directory as an empty one.
        where = error.filename or str(base)
        problems.append(Problem(str(where), 0, "directory",
                                f"cannot read directory: {error.strerror or error}"))

    for dirpath, dirnames, filenames in os.walk(base, onerror=unreadable):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith(".") or not name.lower().endswith(YAML_SUFFIXES):
                continue
            found += 1
            if found > MAX_FILES:
                problems.append(Problem(str(base), 0, "knowledge",
                                        f"more than {MAX_FILES} files; the rest were not read"))
                return
            yield Path(dirpath) / name


@dataclass(slots=True)
class _RawOffering:
    """An offering mapping that passed the schema, with the lines of its fields."""

    data: dict[str, Any]
    path: str
    line: int
    lines: dict[JsonPath, int]


# What the cross-file rules look up in an offering's line index (`_cross_check`); only
# these lines are kept past validation, which keeps cached files small and quick to read.
_CROSS_CHECKED = frozenset({"id", "includes", "replaced_by", "lifecycle"})
_CROSS_CHECKED_REQUEST = frozenset({"form", "deliver_to", "url"})

# A validated file as cached: per offering, its data, first line and cross-checked lines.
_CachedFile = tuple[tuple[dict[str, Any], int, dict[JsonPath, int]], ...]


class _ValidatedFiles:
    """The files of one knowledge directory that passed parsing and validation, by the
    SHA-256 of their bytes, as remembered from the last load and as found by this one."""

    def __init__(self, disk: DiskCache, key: str) -> None:
        self._disk = disk
        self._key = key
        stored = disk.read(key)
        self._before: dict[str, _CachedFile] = stored if isinstance(stored, dict) else {}
        self._now: dict[str, _CachedFile] = {}
        self.hits = 0

    @classmethod
    def open(cls, base: Path) -> _ValidatedFiles:
        # One cache file per knowledge directory: it holds exactly that directory's files as
        # of the last load, so entries of edited or deleted files drop out when it is saved.
        key = hashlib.sha256(str(base.resolve()).encode()).hexdigest()[:24]
        return cls(DiskCache(cache_dir(), "knowledge", _cache_version()), key)

    def get(self, digest: str) -> _CachedFile | None:
        found = self._before.get(digest)
        if found is not None:
            self._now[digest] = found
            self.hits += 1
        return found

    def put(self, digest: str, offerings: Sequence[_RawOffering]) -> None:
        self._now[digest] = tuple((r.data, r.line, r.lines) for r in offerings)

    def save(self) -> None:
        if self._now.keys() != self._before.keys():
            self._disk.write(self._key, self._now)


def _cache_version() -> str:
    # Read at every load, not once: the limits are part of what a file passed.
    return f"{_static_cache_version()}:{MAX_FILE_BYTES}:{MAX_NODES}"


@cache
def _static_cache_version() -> str:
    # Whatever decides whether a file passes and what it yields: this module's code, the
    # schema, the YAML and JSON Schema libraries, and the Python that runs them.
    return catalog_cache.code_version(
        sys.modules[__name__], schema_path(), sys.version,
        catalog_cache.package_version("pyyaml"), catalog_cache.package_version("jsonschema"),
        "libyaml" if _SAFE_LOADER is not yaml.SafeLoader else "pure-python")


def _read_file(path: Path, problems: list[Problem], validated: _ValidatedFiles | None = None,
               *, inside: Path | None = None) -> list[_RawOffering]:
    where = str(path)
    try:
        blob = read_knowledge_file(path, inside)
    except UnsafeFile as exc:
        problems.append(Problem(where, exc.line, "file", str(exc)))
        return []
    except OSError as exc:
        problems.append(Problem(where, 0, "file", f"cannot read file: {exc.strerror or exc}"))
        return []
    if validated is None:
        return _read_blob(blob, where, problems)
    digest = hashlib.sha256(blob).hexdigest()
    known = validated.get(digest)
    if known is not None:
        return [_RawOffering(data, where, line, lines) for data, line, lines in known]
    before = len(problems)
    found = _read_blob(blob, where, problems)
    if len(problems) == before:  # warnings too: they must be reported again next time
        validated.put(digest, found)
    return found


class UnsafeFile(Exception):
    """A knowledge file that is not read: what it is, for the problem's message."""

    def __init__(self, message: str, *, line: int = 0) -> None:
        super().__init__(message)
        self.line = line


def read_knowledge_file(path: Path, inside: Path | None = None) -> bytes:
    """The bytes of one knowledge file, trusting nothing about what the path points to.

    Only a regular file is read (opened without blocking, so a FIFO named `x.yaml` cannot
    hang the loader or a worker's reload poller, and checked after opening, so a device
    such as `/dev/zero` is never read), at most `MAX_FILE_BYTES` + 1 bytes of it; with
    `inside`, a path that resolves outside that folder (a symlink elsewhere) is refused.
    `UnsafeFile` says why a file is not read; `OSError` when it cannot be.
    """
    if inside is not None:
        try:
            target = path.resolve()
        except RuntimeError as exc:  # a symlink loop (Python 3.11 and 3.12 say so this way)
            raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), str(path)) from exc
        if not target.is_relative_to(inside):
            raise UnsafeFile(f"is a link to {target}, outside the knowledge directory; "
                             "only files inside it are read")
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnsafeFile(f"is not a regular file ({_file_kind(info.st_mode)}); only plain "
                             "files are read")
        size = info.st_size
        # Read no more than one byte past the limit even if the file grows meanwhile.
        blob = b"" if size > MAX_FILE_BYTES else handle.read(MAX_FILE_BYTES + 1)
    if size > MAX_FILE_BYTES or len(blob) > MAX_FILE_BYTES:
        raise UnsafeFile(f"file is {max(size, len(blob)):,} bytes; the limit is "
                         f"{MAX_FILE_BYTES:,}", line=1)
    return blob


def _file_kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a named pipe"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISDIR, "a directory")):
        if test(mode):
            return name
    return "not a plain file"


def _read_blob(blob: bytes, where: str, problems: list[Problem]) -> list[_RawOffering]:
    try:
        text = blob.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = blob[: exc.start].count(b"\n") + 1
        problems.append(Problem(where, line, "file", "is not UTF-8 text"))
        return []
    try:
        node, data = _parse(text)
    except yaml.MarkedYAMLError as exc:
        line, what = _yaml_problem(exc, text)
        problems.append(Problem(where, line, "yaml", what))
        return []
    except yaml.YAMLError as exc:
        problems.append(Problem(where, 1, "yaml", str(exc).splitlines()[0]))
        return []
    except RecursionError:
        problems.append(Problem(where, 1, "yaml", "nested too deeply"))
        return []
    if node is None:
        problems.append(Problem(where, 1, "file", "file is empty", Severity.WARNING))
        return []
    lines: dict[JsonPath, int] = {}
    try:
        nodes = _count_nodes(node)
    except RecursionError:  # libyaml parses any depth; walking the tree in Python cannot
        problems.append(Problem(where, 1, "yaml", "nested too deeply"))
        return []
    if nodes > MAX_NODES:
        problems.append(Problem(where, 1, "file", f"more than {MAX_NODES:,} YAML nodes "
                                "(deep nesting or alias expansion); split the file"))
        return []
    _index_lines(node, (), lines, where, problems, seen=set())
    _find_merged_items(node, (), text.splitlines(), where, problems)
    if isinstance(data, list):
        problems.append(Problem(where, 1, "offering", "the file is a list, not a mapping: "
                                "start it with `offerings:` and indent the list under it"))
        return []
    return _split_offerings(data, lines, where, problems)


# What the YAML parser says, and what a person editing the file needs to hear with it.
_YAML_HINTS = (
    ("mapping values are not allowed", "text containing `: ` starts a new field: put the "
                                       "text in quotes, or check the indentation"),
    ("could not find expected ':'", "a line that is neither `field: value` nor a list item: "
                                    "add the `:`, or check the indentation of the lines "
                                    "around it"),
    ("did not find expected '-' indicator", "check the indentation: the items of a list "
                                            "start with `- ` in the same column"),
    ("did not find expected key", "check the indentation: the fields of one offering start "
                                  "in the same column"),
    ("expected <block end>", "check the indentation: the fields of one offering start in "
                             "the same column"),
    ("found a tab character", "indent with spaces, not tabs"),
    ("found character that cannot start any token", "quote text that starts with @, `, % "
                                                    "or another special character"),
    ("found unexpected end of stream", "a quote or bracket opened here is never closed"),
    ("did not find expected ',' or ']'", "a `[` list opened here is not closed with `]` "
                                         "(or quote an item containing `,` or `]`)"),
    ("did not find expected ',' or '}'", "a `{` mapping opened here is not closed with `}`"),
)


# Errors the parser notices after the line at fault: the key whose `:` is missing, the
# quote or bracket never closed. Its context mark is where that began.
_BEGUN_EARLIER = ("could not find expected ':'", "found unexpected end of stream",
                  "did not find expected ',' or ']'", "did not find expected ',' or '}'")


def _yaml_problem(exc: yaml.MarkedYAMLError, text: str) -> tuple[int, str]:
    """(line, message) for a YAML syntax error: the parser's words, a hint for a person,
    and the line where the trouble is rather than where the parser noticed it."""
    what = exc.problem or "invalid YAML"
    mark = exc.problem_mark or exc.context_mark
    context = exc.context_mark
    if context is not None and mark is not None and (
            mark.line >= len(text.splitlines()) or what.startswith(_BEGUN_EARLIER)):
        # Noticed on a later line (or at the end of the file): the construct that went
        # wrong began at the context mark, e.g. the line whose `:` is missing.
        mark = context
    line = mark.line + 1 if mark else 1
    if isinstance(exc, yaml.constructor.ConstructorError):
        return line, f"{what} (only plain YAML is allowed)"
    hint = next((h for start, h in _YAML_HINTS if what.startswith(start)), None)
    return line, f"{what} ({hint})" if hint else what


def _find_merged_items(node: yaml.Node, at: JsonPath, source: Sequence[str], where: str,
                       problems: list[Problem], *, depth: int = 0) -> None:
    """A plain text that runs over several lines, one of which starts with `- `: a list
    item indented one space too far continues the item above instead (`- I need a laptop`
    then ` - I need a headset` reads as the one need "I need a laptop - I need a headset").
    In a list that is an error; elsewhere (a description) a warning: the line breaks of
    a bulleted text are lost without `|`."""
    if depth > 50:
        return
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            _find_merged_items(value, at + (str(key.value),), source, where, problems,
                               depth=depth + 1)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            if isinstance(item, yaml.ScalarNode):
                _merged_lines(item, at + (i,), source, where, problems, in_list=True)
            else:
                _find_merged_items(item, at + (i,), source, where, problems, depth=depth + 1)
    elif isinstance(node, yaml.ScalarNode) and at:
        _merged_lines(node, at, source, where, problems, in_list=False)


def _merged_lines(node: yaml.ScalarNode, at: JsonPath, source: Sequence[str], where: str,
                  problems: list[Problem], *, in_list: bool) -> None:
    if node.style not in (None, "") or node.start_mark.line == node.end_mark.line:
        return  # quoted or block text keeps its lines; one line cannot merge anything
    if len(at) > 2 and at[0] == "offerings" and isinstance(at[1], int):
        at = at[2:]  # fields are named within their offering, as everywhere else
    for number in range(node.start_mark.line + 1, min(node.end_mark.line + 1, len(source))):
        if not source[number].lstrip().startswith("- "):
            continue
        if in_list:
            problems.append(Problem(
                where, number + 1, _dotted(at),
                "this `- ` line continues the item above, which becomes one text "
                f"({printable(str(node.value), 80)!r}): indent the `-` like the other items "
                "to make it an item of its own"))
        else:
            problems.append(Problem(
                where, number + 1, _dotted(at),
                "a line starting with `- ` continues the text above on one line: write "
                "`|` after the field's colon to keep each line as written",
                Severity.WARNING))
        return


# libyaml's parser keeps the same marks (line numbers) and is several times faster on large
# catalogues; the pure-Python one is the fallback where PyYAML was built without it.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _parse(text: str) -> tuple[yaml.Node | None, Any]:
    loader = _SAFE_LOADER(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()
    return node, data


def _count_nodes(root: yaml.Node) -> int:
    """Nodes as the data would expand them (aliases counted each time), stopping early."""
    memo: dict[int, int] = {}

    def count(node: yaml.Node) -> int:
        key = id(node)
        if key in memo:
            return memo[key]
        memo[key] = 1  # a recursive alias counts once instead of looping
        total = 1
        if isinstance(node, yaml.MappingNode):
            total += sum(count(k) + count(v) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            total += sum(count(v) for v in node.value)
        memo[key] = min(total, MAX_NODES + 1)
        return memo[key]

    return count(root)


def _index_lines(node: yaml.Node, at: JsonPath, lines: dict[JsonPath, int],
                 where: str, problems: list[Problem], *, seen: set[int],
                 depth: int = 0) -> None:
    lines.setdefault(at, node.start_mark.line + 1)
    # An alias repeats a node already indexed: its lines are those of the anchor.
    if depth > 50 or id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        keys: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in keys and key != "<<":
                problems.append(Problem(where, line, _dotted(at + (key,)) or key,
                                        "duplicate key: the earlier value would be lost"))
            keys.add(key)
            lines[at + (key,)] = line
            _index_lines(value_node, at + (key,), lines, where, problems, seen=seen,
                         depth=depth + 1)
            lines[at + (key,)] = line
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index_lines(item, at + (i,), lines, where, problems, seen=seen, depth=depth + 1)


def _split_offerings(data: Any, lines: dict[JsonPath, int], where: str,
                     problems: list[Problem]) -> list[_RawOffering]:
    if isinstance(data, Mapping) and "offerings" in data:
        extra = [k for k in data if k != "offerings" and not str(k).startswith("x-")]
        for key in extra:
            problems.append(Problem(where, lines.get((str(key),), 1), str(key),
                                    "unknown top-level field; a file holds one offering "
                                    "or an `offerings:` list"))
        items = data["offerings"]
        if not isinstance(items, list) or not items:
            problems.append(Problem(where, lines.get(("offerings",), 1), "offerings",
                                    "must be a non-empty list of offerings"))
            return []
        # One pass over the line index, not one per offering (files can hold thousands).
        per_item: dict[int, dict[JsonPath, int]] = defaultdict(dict)
        for path, line in lines.items():
            if len(path) >= 2 and path[0] == "offerings" and isinstance(path[1], int):
                per_item[path[1]][path[2:]] = line
        result = []
        for i, item in enumerate(items):
            result.extend(_validate_offering(item, per_item[i], where, problems))
        return result
    return _validate_offering(data, lines, where, problems)


def _validate_offering(item: Any, lines: dict[JsonPath, int], where: str,
                       problems: list[Problem]) -> list[_RawOffering]:
    start = lines.get((), 1)
    if not isinstance(item, Mapping):
        problems.append(Problem(where, start, "offering",
                                f"must be a mapping of fields, not {_type_name(item)}"))
        return []
    item = {str(k): v for k, v in item.items()}
    errors = sorted(_offering_validator().iter_errors(item), key=lambda e: list(e.path).__str__())
    if not errors:
        checked = {at: n for at, n in lines.items() if _cross_checked(at)}
        return [_RawOffering(item, where, start, checked)]
    found: dict[Problem, None] = {}
    for error in errors:
        found.update(dict.fromkeys(_explain(error, item, lines, where)))
    problems.extend(found)
    return []


def _cross_checked(at: JsonPath) -> bool:
    if not at or at[0] in _CROSS_CHECKED:
        return True
    return at[0] == "request" and len(at) >= 2 and at[1] in _CROSS_CHECKED_REQUEST


def _explain(error: ValidationError, item: Mapping[str, Any], lines: dict[JsonPath, int],
             where: str) -> Iterator[Problem]:
    at: JsonPath = tuple(error.absolute_path)
    line = _line_for(lines, at)
    field = _dotted(at) or "offering"
    validator = error.validator
    instance: Any = error.instance
    if validator == "required":
        required: Any = error.validator_value
        parent = instance if isinstance(instance, Mapping) else {}
        for name in required:
            if name not in parent:
                message = ("a `choice` field needs `options`: the answers to pick from"
                           if name == "options" else "required field is missing")
                yield Problem(where, line, _dotted(at + (name,)), message)
        return
    if validator == "dependentRequired":
        present = "form" if "form" in instance else "deliver_to"
        missing = "deliver_to" if present == "form" else "form"
        message = ("a form needs `deliver_to`: where submitted requests go (`channel`, "
                   "`owner: true` and/or `webhook`)" if missing == "deliver_to" else
                   "`deliver_to` without a `form`: add the form's questions, or remove "
                   "`deliver_to`")
        yield Problem(where, _line_for(lines, at + (present,)), _dotted(at + (missing,)),
                      message)
        return
    if validator == "not" and isinstance(instance, Mapping) and "options" in instance:
        yield Problem(where, _line_for(lines, at + ("options",)), _dotted(at + ("options",)),
                      "only a `type: choice` field has `options`")
        return
    if validator == "additionalProperties":
        schema: Any = error.schema
        allowed = tuple(schema.get("properties", {}))
        for key in instance:
            if key in allowed or str(key).startswith("x-"):
                continue
            hint = _did_you_mean(str(key), allowed)
            yield Problem(where, _line_for(lines, at + (key,)), _dotted(at + (key,)),
                          f"unknown field{hint} (custom metadata must start with `x-`)")
        return
    yield Problem(where, line, field, _message(error, at))


def _message(error: ValidationError, at: JsonPath) -> str:
    validator = error.validator
    instance: Any = error.instance
    choices: Any = error.validator_value
    leaf = next((p for p in reversed(at) if isinstance(p, str)), "")
    if validator == "enum":
        options = ", ".join(f"`{v}`" for v in choices)
        hint = _did_you_mean(str(instance), [str(v) for v in choices])
        return f"must be one of {options}, not {instance!r}{hint}"
    if validator == "type":
        wanted = {"string": "text", "array": "a list", "object": "a mapping"}.get(
            str(choices), str(choices))
        return f"must be {wanted}, not {_type_name(instance)}"
    if validator == "maxItems" and leaf == "form":
        return f"has {len(instance)} fields; a form has at most {MAX_FORM_FIELDS}"
    if validator == "maxItems":
        return f"has {len(instance)} items; at most {choices} are allowed"
    if validator == "maxLength":
        more = ("; one sentence here, the details in `description`" if leaf == "summary"
                else "")
        return f"is {len(instance):,} characters long; at most {choices:,} are allowed{more}"
    if validator == "uniqueItems":
        return "lists the same option twice"
    if validator in ("minLength", "minItems") or (validator == "pattern" and leaf not in
                                                  ("id", "url", "contact", "includes",
                                                   "replaced_by", "channel", "webhook")):
        return "must not be empty"
    if validator == "pattern" and leaf == "channel":
        return f"must be a channel, `#name` or its id `C…`, not {instance!r}"
    if validator == "pattern" and leaf == "webhook":
        return (f"must be a webhook's name (lowercase letters, digits and `_`, e.g. "
                f"`servicedesk`), not {instance!r}: its URL and secret are set in the "
                "environment, never here")
    if validator == "pattern" and leaf == "id" and "form" in at:
        return (f"{instance!r} is not a valid field id: use lowercase letters, digits, `-` and "
                "`_` (at most 50), e.g. `needed-by`")
    if validator == "pattern":
        if leaf == "url":
            parsed = urlsplit(str(instance))
            if parsed.scheme and parsed.scheme != "https":
                return f"must be an https:// link, not {parsed.scheme}:// ({instance!r})"
            return f"is not a valid https:// link: {instance!r}"
        if leaf == "contact":
            return ("must be a Slack user ID (U…), usergroup ID (S…), channel (#name or C…) "
                    f"or an email address, not {instance!r}")
        return (f"{instance!r} is not a valid id: use lowercase letters, digits and hyphens, "
                "e.g. `laptop-standard`")
    if validator == "anyOf" and leaf == "request":
        return "needs a `url`, `steps` or a `form` (or several)"
    if validator == "anyOf" and leaf == "deliver_to":
        return "needs a `channel`, `owner: true` and/or a `webhook`"
    return error.message


def _cross_check(raw: Sequence[_RawOffering], problems: list[Problem],
                 webhooks: KnownWebhooks | None = None) -> list[Offering]:
    first_seen: dict[str, _RawOffering] = {}
    unique: list[_RawOffering] = []
    for r in raw:
        oid = r.data["id"]
        if oid in first_seen:
            other = first_seen[oid]
            problems.append(Problem(r.path, _line_for(r.lines, ("id",)), "id",
                                    f"duplicate id {oid!r}: also defined at "
                                    f"{other.path}:{_line_for(other.lines, ('id',))}"))
            continue
        first_seen[oid] = r
        unique.append(r)
    known = tuple(first_seen)
    for r in unique:
        data = r.data
        for i, ref in enumerate(data.get("includes", ())):
            if ref == data["id"]:
                problems.append(Problem(r.path, _line_for(r.lines, ("includes", i)),
                                        f"includes[{i}]", "an offering cannot include itself"))
            elif ref not in first_seen:
                problems.append(Problem(r.path, _line_for(r.lines, ("includes", i)),
                                        f"includes[{i}]",
                                        f"unknown offering id {ref!r}{_did_you_mean(ref, known)}"))
        lifecycle = data.get("lifecycle", "live")
        ref = data.get("replaced_by")
        line = _line_for(r.lines, ("replaced_by",))
        if ref is not None and ref not in first_seen:
            problems.append(Problem(r.path, line, "replaced_by",
                                    f"unknown offering id {ref!r}{_did_you_mean(ref, known)}"))
        elif ref is not None and ref == data["id"]:
            problems.append(Problem(r.path, line, "replaced_by",
                                    "an offering cannot replace itself"))
        elif ref is not None and lifecycle != "retired":
            problems.append(Problem(r.path, line, "replaced_by",
                                    f"is set but lifecycle is {lifecycle!r}; only retired "
                                    "offerings are replaced", Severity.WARNING))
        if lifecycle == "retired" and ref is None:
            problems.append(Problem(r.path, _line_for(r.lines, ("lifecycle",)), "lifecycle",
                                    "retired without `replaced_by`: employees who ask for it "
                                    "will be told it is retired with nothing to order instead",
                                    Severity.WARNING))
        _check_form(r, problems, webhooks)
    _check_shared_links(unique, problems)
    offerings = [_build(r) for r in unique]
    catalog = Catalog(tuple(offerings))
    for r, o in zip(unique, offerings, strict=True):
        if o.is_retired and o.replaced_by in catalog and catalog.live_replacement(o) is None:
            problems.append(Problem(r.path, _line_for(r.lines, ("replaced_by",)), "replaced_by",
                                    "the replacement chain never reaches a live offering"))
    return offerings


def _check_shared_links(unique: Sequence[_RawOffering], problems: list[Problem]) -> None:
    """Two orderable offerings with one request link: usually an offering copied from
    another whose link was not changed, so employees order the wrong thing."""
    first: dict[str, _RawOffering] = {}
    for r in unique:
        url = r.data["request"].get("url")
        if url is None or r.data.get("lifecycle") == "retired":
            continue
        other = first.setdefault(url, r)
        if other is not r:
            problems.append(Problem(
                r.path, _line_for(r.lines, ("request", "url")), "request.url",
                f"the same request link as {other.data['id']!r} "
                f"({other.path}:{_line_for(other.lines, ('request', 'url'))}); copied from "
                "it? Each offering should link to its own form", Severity.WARNING))


# Owner contacts that a request can be delivered to: a user (as a direct message from the
# app) or a channel. A usergroup or an email address cannot receive a Slack message.
_DELIVERABLE_CONTACT = re.compile(r"[UW][A-Z0-9]{6,}|[CG][A-Z0-9]{6,}|#[a-z0-9][a-z0-9._-]*")


def _check_form(r: _RawOffering, problems: list[Problem],
                webhooks: KnownWebhooks | None) -> None:
    """The rules of a request form that the schema cannot say: unique field ids, an owner
    that can receive a message, webhook names that are configured."""
    request = r.data["request"]
    seen: dict[str, int] = {}
    for i, spec in enumerate(request.get("form", ())):
        field_id = _field_id(spec, i)
        if field_id in seen:
            problems.append(Problem(
                r.path, _line_for(r.lines, ("request", "form", i)), f"request.form[{i}]",
                f"field id {field_id!r} is also the id of request.form[{seen[field_id]}]; give "
                "one of them another `id` (answers are keyed by it)"))
        seen.setdefault(field_id, i)
    deliver_to = request.get("deliver_to") or {}
    if deliver_to.get("owner"):
        contact = r.data["owner"].get("contact")
        if contact is None or not _DELIVERABLE_CONTACT.fullmatch(contact):
            what = ("there is no `owner.contact`" if contact is None else
                    f"the owner contact {contact!r} is {_contact_kind(contact)}")
            problems.append(Problem(
                r.path, _line_for(r.lines, ("request", "deliver_to", "owner")),
                "request.deliver_to.owner",
                f"{what}, which cannot receive a request; set `owner.contact` to a user (U…) "
                "or a channel (#name or C…), or use `channel:`"))
    name = deliver_to.get("webhook")
    if name is not None and webhooks is not None and name not in webhooks.names:
        line = _line_for(r.lines, ("request", "deliver_to", "webhook"))
        if not webhooks.names and not webhooks.strict:
            problems.append(Problem(
                r.path, line, "request.deliver_to.webhook",
                f"webhook {name!r} cannot be checked: no webhook is configured here "
                f"({webhooks.source})", Severity.WARNING))
        else:
            known = ", ".join(sorted(webhooks.names)) or "none"
            problems.append(Problem(
                r.path, line, "request.deliver_to.webhook",
                f"unknown webhook {name!r}{_did_you_mean(name, sorted(webhooks.names))}; "
                f"configured: {known} ({webhooks.source})"))


def _contact_kind(contact: str) -> str:
    if re.fullmatch(r"S[A-Z0-9]{6,}", contact):
        return "a usergroup"
    return "an email address" if "@" in contact else "not a user or channel"


def _field_id(spec: Mapping[str, Any], index: int) -> str:
    """A field's written `id`, else one made from its label (`Needed by?` → `needed-by`)."""
    written = spec.get("id")
    if written:
        return str(written)
    ascii_label = unicodedata.normalize("NFKD", str(spec["label"])).encode(
        "ascii", "ignore").decode().lower()
    made = re.sub(r"[^a-z0-9]+", "-", ascii_label).strip("-")[:50].strip("-")
    return made or f"field-{index + 1}"


def _build_request(request: Mapping[str, Any]) -> RequestInfo:
    form = tuple(
        FormField(id=_field_id(spec, i), label=_clean(spec["label"]),
                  type=FieldType(spec.get("type", "text")),
                  required=bool(spec.get("required", False)),
                  help=_opt(spec.get("help")),
                  options=tuple(_clean(o) for o in spec.get("options", ())))
        for i, spec in enumerate(request.get("form", ())))
    deliver = request.get("deliver_to")
    deliver_to = None if deliver is None else DeliverTo(
        channel=deliver.get("channel"), owner=bool(deliver.get("owner", False)),
        webhook=deliver.get("webhook"))
    return RequestInfo(url=request.get("url"), steps=_opt(request.get("steps")), form=form,
                       deliver_to=deliver_to)


def _build(r: _RawOffering) -> Offering:
    d = r.data
    owner = d["owner"]
    request = d["request"]
    return Offering(
        id=d["id"],
        name=_clean(d["name"]),
        summary=_clean(d["summary"]),
        kind=Kind(d["kind"]),
        owner=Owner(team=_clean(owner["team"]), contact=owner.get("contact")),
        request=_build_request(request),
        needs=tuple(_clean(n) for n in d["needs"]),
        keywords=tuple(_clean(k) for k in d.get("keywords", ())),
        description=_opt(d.get("description")),
        category=_opt(d.get("category")),
        includes=tuple(d.get("includes", ())),
        cost=_opt(d.get("cost")),
        service_level=_opt(d.get("service_level")),
        audience=_opt(d.get("audience")),
        lifecycle=Lifecycle(d.get("lifecycle", "live")),
        replaced_by=d.get("replaced_by"),
        source=SourceRef(r.path, r.line),
    )


def _clean(text: str) -> str:
    return " ".join(text.split())


def _opt(text: str | None) -> str | None:
    return text.strip() if text is not None else None


def _line_for(lines: Mapping[JsonPath, int], at: JsonPath) -> int:
    while at not in lines and at:
        at = at[:-1]
    return lines.get(at, 1)


def _dotted(at: JsonPath) -> str:
    out = ""
    for part in at:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _type_name(value: object) -> str:
    if value is None:
        return "empty"
    return {bool: "true/false", int: "a number", float: "a number", str: "text",
            list: "a list", dict: "a mapping"}.get(type(value), type(value).__name__)


def _did_you_mean(word: str, options: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean `{close[0]}`?)" if close else ""


def known_fields() -> tuple[str, ...]:
    """The offering fields schema v1 allows (besides `x-` ones)."""
    return _offering_fields()
