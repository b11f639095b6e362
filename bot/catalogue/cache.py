"""Values that are slow to rebuild from the knowledge files, kept on disk between runs.

The loader keeps each validated knowledge file here (keyed by a digest of its bytes), and
the lexical index of a large catalogue (keyed by a digest of the catalogue's text), so an
unchanged catalogue starts without parsing, validating or indexing again.

A cache file is a pickle of `(version, key, value)`. `version` names the code and data the
value was built with (see `code_version`): a file written by another version is stale and
ignored, as is one that cannot be read or unpickled; each logs one warning and the caller
rebuilds. Files are written to a temporary name and renamed, so a reader (another worker)
sees the old file or the new one, never half of one.

Pickle runs code while loading, so it is only safe on files the app wrote itself: these
live in the app's own cache directory (`CONCIERGE_CACHE_DIR`, else the user's cache
directory), which nothing else writes, and an attacker able to write there could as well
change the app's code or configuration.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from types import ModuleType

log = logging.getLogger(__name__)


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


@dataclass(frozen=True, slots=True)
class DiskCache:
    """One kind of cached value (`kind` prefixes the file names) in `folder`.

    At most `keep` files of a kind are kept: writing one removes the least recently
    written others, so catalogues that come and go (tests, benchmarks, edits) cannot
    fill the disk.
    """

    folder: Path
    kind: str
    version: str
    keep: int = 8

    def path(self, key: str) -> Path:
        return self.folder / f"{self.kind}-{key}.pickle"

    def read(self, key: str) -> object | None:
        """The value stored under `key` by this version; None when absent, stale or unreadable
        (then with one warning)."""
        path = self.path(key)
        try:
            with path.open("rb") as fh:
                stored = pickle.load(fh)  # the app's own cache directory: see the module doc
        except FileNotFoundError:
            return None
        except Exception as exc:  # a truncated or foreign file can raise almost anything
            log.warning("ignoring unreadable %s cache %s (%s: %s); rebuilding it",
                        self.kind, path, type(exc).__name__, exc)
            return None
        if not (isinstance(stored, tuple) and len(stored) == 3):
            log.warning("ignoring %s cache %s: not a cache file; rebuilding it", self.kind, path)
            return None
        version, stored_key = stored[0], stored[1]
        value: object = stored[2]
        if version != self.version or stored_key != key:
            log.warning("ignoring stale %s cache %s (written by another version); rebuilding it",
                        self.kind, path)
            return None
        return value

    def write(self, key: str, value: object) -> None:
        """Store `value` under `key` atomically; a failure is logged, never raised (the cache
        only saves time)."""
        path = self.path(key)
        tmp: str | None = None
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=f".{self.kind}-",
                                       suffix=".tmp")
            with os.fdopen(fd, "wb") as fh:
                pickle.dump((self.version, key, value), fh, protocol=pickle.HIGHEST_PROTOCOL)
            Path(tmp).replace(path)
            tmp = None
        except (OSError, pickle.PicklingError) as exc:
            log.warning("could not write %s cache %s: %s", self.kind, path, exc)
        finally:
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
        self._prune(keeping=path)

    def _prune(self, keeping: Path) -> None:
        try:
            others = [p for p in self.folder.glob(f"{self.kind}-*.pickle") if p != keeping]
            dated = sorted(((p.stat().st_mtime_ns, p) for p in others), reverse=True)
            for _, old in dated[max(self.keep - 1, 0):]:
                old.unlink(missing_ok=True)
        except OSError as exc:  # another worker pruning at the same time, or a read-only dir
            log.debug("could not prune %s caches in %s: %s", self.kind, self.folder, exc)
