"""Values that are slow to rebuild from the knowledge files, kept on disk between runs.

The loader keeps each validated knowledge file here (keyed by a digest of its bytes), and
the lexical index of a large catalogue (keyed by a digest of the catalogue's text), so an
unchanged catalogue starts without parsing, validating or indexing again.

A cache file holds data only, never code: a header line, the SHA-256 of the rest, then the
NumPy arrays of the value (stored with `allow_pickle=False`) and a JSON document holding
`version`, `key` and the value, which refers to the arrays. The value may hold text,
numbers, lists, tuples, dicts, sets, dates, bytes (all YAML's safe loader makes), arrays,
and instances of the frozen dataclasses its `DiskCache` names (built from their fields, so
nothing else is ever constructed). `version` names the code and data the value was built
with (see `code_version`): a file written by another version is stale and ignored, as is
one whose digest does not match (truncated, corrupted) or that cannot be read; each logs
one warning and the caller rebuilds. Files are written to a temporary name and renamed, so
a reader (another worker) sees the old file or the new one, never half of one.

The folder is created readable by its owner only (0700) and its files 0600; a folder that
is not the process's own, or that others may write to, is not used at all (one warning, and
everything is rebuilt): what is in it becomes the catalogue that is served, so whoever can
write there could otherwise make Concierge serve links and text that no knowledge file says.
The digest is not keyed: a key would have to live where the same user can read it, and that
user can change Concierge's code anyway.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import hashlib
import io
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeGuard, TypeVar

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)
T = TypeVar("T")


def code_version(*parts: ModuleType | Path | str) -> str:
    """A digest of what a cached value was built with: the source of the modules that build
    it (so any edit to them makes old values stale), data files, and plain strings such as
    package versions."""
    digest = hashlib.sha256()
    for part in parts:
        source = Path(part.__file__ or part.__name__) if isinstance(part, ModuleType) else part
        if isinstance(source, Path):
            try:
                blob = source.read_bytes()
            except OSError:
                blob = str(source).encode()  # no source (frozen app): its name stands in
        else:
            blob = source.encode()
        digest.update(len(blob).to_bytes(8, "big"))
        digest.update(blob)
    return digest.hexdigest()


def package_version(name: str) -> str:
    """The installed version of a distribution, for `code_version` ("?" if not found)."""
    try:
        return f"{name}=={metadata.version(name)}"
    except metadata.PackageNotFoundError:
        return f"{name}==?"


def digest_of(chunks: Iterable[bytes]) -> str:
    """SHA-256 of byte strings, each length-prefixed so no two sequences collide."""
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(len(chunk).to_bytes(8, "big"))
        digest.update(chunk)
    return digest.hexdigest()


MAGIC = b"concierge cache v1\n"
_HEADER_BYTES = 8  # length of the JSON document that follows the digest line
_refused_folders: set[str] = set()


def usable_folder(folder: Path) -> bool:
    """Whether `folder` may hold caches: created 0700 if missing; an existing one must be
    this user's and writable by nobody else. A folder that is not is refused with one
    warning per process."""
    problem = None
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = folder.stat()
    except OSError as exc:
        problem = f"it cannot be made or read ({exc.strerror or exc})"
    if problem is not None:
        pass
    elif info.st_uid != os.getuid():
        problem = f"it belongs to user {info.st_uid}, not to this process's user"
    elif info.st_mode & 0o022:
        problem = f"others may write to it (mode {info.st_mode & 0o777:o})"
    if problem is None:
        return True
    if str(folder) not in _refused_folders:
        _refused_folders.add(str(folder))
        log.warning("not using the cache folder %s: %s. Whatever is cached there becomes "
                    "what Concierge serves, so it must be this user's alone; everything is "
                    "rebuilt on each start instead (chmod 700 it, or set CONCIERGE_CACHE_DIR "
                    "to a folder of this user's)", folder, problem)
    return False


class CacheFormatError(ValueError):
    """A cache file that is not one, or not whole."""


# JSON has no tuples, sets, dates, arrays or non-text keys: such values are JSON objects of
# one key that starts with this character (`{"\x01t": [1, 2]}` is the tuple (1, 2)). A dict
# of text keys is a plain JSON object, unless one of its keys could be taken for a tag.
TAG = "\x01"


def encode(value: object, types: Sequence[type]) -> bytes:
    """`value` as a cache file's payload: JSON plus arrays (see the module docstring)."""
    arrays: list[np.ndarray[Any, Any]] = []
    names = {t.__name__: t for t in types}

    def tree(node: object) -> object:
        if node is None or isinstance(node, bool | int | float | str):
            return node
        if isinstance(node, list):
            return [tree(x) for x in node]
        if isinstance(node, tuple):
            return {TAG + "t": [tree(x) for x in node]}
        if isinstance(node, dict):
            if all(isinstance(k, str) and not k.startswith(TAG) for k in node):
                return {k: tree(v) for k, v in node.items()}
            return {TAG + "d": [[tree(k), tree(v)] for k, v in node.items()]}
        if isinstance(node, set | frozenset):  # what YAML's `!!set` makes
            return {TAG + "s": [tree(x) for x in node]}
        if isinstance(node, datetime.datetime):  # before date: a datetime is a date too
            return {TAG + "T": node.isoformat()}
        if isinstance(node, datetime.date):  # YAML reads `2024-05-01` as a date
            return {TAG + "D": node.isoformat()}
        if isinstance(node, bytes):  # `!!binary`
            return {TAG + "b": base64.b64encode(node).decode()}
        if _is_array(node) and node.dtype != object:
            arrays.append(node)
            return {TAG + "a": len(arrays) - 1}
        kind = type(node).__name__
        if names.get(kind) is type(node) and dataclasses.is_dataclass(node):
            return {TAG + "c": [kind, {f.name: tree(getattr(node, f.name))
                                       for f in dataclasses.fields(node)}]}
        raise TypeError(f"cannot cache a {kind}")

    document = json.dumps(tree(value), separators=(",", ":"), ensure_ascii=False).encode()
    out = io.BytesIO()
    out.write(len(arrays).to_bytes(_HEADER_BYTES, "big"))
    if arrays:
        import numpy as np  # only values with arrays need it (a check never imports it)

        for array in arrays:
            np.lib.format.write_array(out, np.ascontiguousarray(array), allow_pickle=False)
    out.write(document)
    return out.getvalue()


def _is_array(node: object) -> TypeGuard[np.ndarray[Any, Any]]:
    kind = type(node)
    return kind.__name__ == "ndarray" and kind.__module__ == "numpy"


def decode(payload: bytes, types: Sequence[type]) -> object:
    """The value `encode` stored; `CacheFormatError` when the payload is not one."""
    names = {t.__name__: t for t in types}
    stream = io.BytesIO(payload)
    try:
        count = int.from_bytes(stream.read(_HEADER_BYTES), "big")
        arrays: list[object] = []
        if count:
            import numpy as np

            arrays = [np.lib.format.read_array(stream, allow_pickle=False)
                      for _ in range(count)]
    except (ValueError, EOFError) as exc:
        raise CacheFormatError(f"unreadable arrays ({type(exc).__name__})") from exc

    def tagged(node: dict[str, Any]) -> object:
        # Called by the JSON parser for every object, innermost first.
        if len(node) != 1:
            return node
        [(key, inner)] = node.items()
        if not key.startswith(TAG):
            return node
        kind = key[1:]
        if kind == "t":
            return tuple(inner)
        if kind == "d":
            return dict(inner)
        if kind == "s":
            return set(inner)
        if kind == "T":
            return datetime.datetime.fromisoformat(inner)
        if kind == "D":
            return datetime.date.fromisoformat(inner)
        if kind == "b":
            return base64.b64decode(inner)
        if kind == "a":
            return arrays[inner]
        if kind == "c" and inner[0] in names:
            return names[inner[0]](**inner[1])
        raise CacheFormatError(f"a value of an unexpected kind ({key[1:]!r})")

    try:
        return json.loads(stream.read(), object_hook=tagged)
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        if isinstance(exc, CacheFormatError):
            raise
        raise CacheFormatError(f"malformed value ({type(exc).__name__})") from exc


@dataclass(frozen=True, slots=True)
class DiskCache:
    """One kind of cached value (`kind` prefixes the file names) in `folder`.

    `types`: the frozen dataclasses a value may contain. At most `keep` files of a kind
    are kept: writing one removes the least recently written others, so catalogues that
    come and go (tests, benchmarks, edits) cannot fill the disk.
    """

    folder: Path
    kind: str
    version: str
    keep: int = 8
    types: tuple[type, ...] = ()

    def path(self, key: str) -> Path:
        return self.folder / f"{self.kind}-{key}.cache"

    def read(self, key: str) -> object | None:
        """The value stored under `key` by this version; None when absent, stale or unreadable
        (then with one warning)."""
        if not usable_folder(self.folder):
            return None
        path = self.path(key)
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("ignoring unreadable %s cache %s (%s); rebuilding it", self.kind, path,
                        exc)
            return None
        try:
            stored = decode(_checked(blob), self.types)
        except (CacheFormatError, TypeError) as exc:
            log.warning("ignoring unreadable %s cache %s (%s); rebuilding it", self.kind, path,
                        exc)
            return None
        if not (isinstance(stored, dict) and stored.keys() == {"version", "key", "value"}):
            log.warning("ignoring %s cache %s: not a cache file; rebuilding it", self.kind, path)
            return None
        if stored["version"] != self.version or stored["key"] != key:
            log.warning("ignoring stale %s cache %s (written by another version); rebuilding it",
                        self.kind, path)
            return None
        found: object = stored["value"]
        return found

    def read_or_build(self, key: str, expected: type[T], build: Callable[[], T]) -> T:
        """The `expected` value stored under `key`, or else `build()`'s, stored for next
        time."""
        stored = self.read(key)
        if isinstance(stored, expected):
            return stored
        value = build()
        self.write(key, value)
        return value

    def write(self, key: str, value: object) -> None:
        """Store `value` under `key` atomically; a failure is logged, never raised (the cache
        only saves time)."""
        if not usable_folder(self.folder):
            return
        path = self.path(key)
        tmp: str | None = None
        try:
            payload = encode({"version": self.version, "key": key, "value": value},
                             self.types)
            fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=f".{self.kind}-",
                                       suffix=".tmp")  # 0600
            with os.fdopen(fd, "wb") as fh:
                fh.write(MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n")
                fh.write(payload)
            Path(tmp).replace(path)
            tmp = None
        except (OSError, TypeError, ValueError) as exc:
            log.warning("could not write %s cache %s: %s", self.kind, path, exc)
        finally:
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
        self._prune(keeping=path)

    def _prune(self, keeping: Path) -> None:
        try:
            others = [p for p in self.folder.glob(f"{self.kind}-*.cache") if p != keeping]
            dated = sorted(((p.stat().st_mtime_ns, p) for p in others), reverse=True)
            for _, old in dated[max(self.keep - 1, 0):]:
                old.unlink(missing_ok=True)
            # Files of the pickle format this one replaced: never read, only removed.
            for old in self.folder.glob(f"{self.kind}-*.pickle"):
                old.unlink(missing_ok=True)
        except OSError as exc:  # another worker pruning at the same time, or a read-only dir
            log.debug("could not prune %s caches in %s: %s", self.kind, self.folder, exc)


def _checked(blob: bytes) -> bytes:
    """The payload of a cache file, after its header and digest check out."""
    digest_end = len(MAGIC) + 65
    if not blob.startswith(MAGIC) or len(blob) < digest_end:
        raise CacheFormatError("not a cache file")
    digest = blob[len(MAGIC):digest_end - 1]
    payload = blob[digest_end:]
    if hashlib.sha256(payload).hexdigest().encode() != digest:
        raise CacheFormatError("its digest does not match: truncated or corrupted")
    return payload
