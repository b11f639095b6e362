"""The catalogue a running worker serves, and how it is replaced without a restart.

    /concierge reload ──▶ reload_everywhere(): reload from disk; on success bump the
                          generation in the store
    every worker's poller (every CONCIERGE_RELOAD_INTERVAL s):
        generation in the store > ours  ──▶ reload from disk
        knowledge files changed on disk ──▶ reload from disk (CONCIERGE_WATCH_KNOWLEDGE)

A reload that finds errors keeps serving the last good catalogue and reports
the problems. The matcher is swapped in one reference assignment, so a question
being answered during a reload finishes with the matcher it started with. A reload
that finds the same catalogue keeps the matcher it has. Under gunicorn that matcher was
built by the master before forking and is shared with the other workers, and a rebuilt one
would be this worker's own copy (at 10,000 offerings, 500 MB per worker): so there a changed
catalogue is not built in the worker at all. `handover` asks the master to build it and fork
new workers with it (`bot.slack.server`); this worker answers with the catalogue it has until
it is replaced, seconds later.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bot.catalogue.loader import check_knowledge, knowledge_files
from bot.catalogue.models import Catalog, CatalogDiff, KnownWebhooks, Problem
from bot.matching.engine import build_matcher
from bot.matching.matcher import Matcher
from bot.store.recorder import BestEffort

log = logging.getLogger("concierge.reload")

DEFAULT_RELOAD_INTERVAL = 5.0

Fingerprint = tuple[tuple[str, int, int], ...]


def fingerprint(root: Path) -> Fingerprint:
    """(path, mtime_ns, size) of every knowledge file the loader would read: cheap to take,
    changes with any edit."""
    found: list[tuple[str, int, int]] = []
    for path in knowledge_files(root, []):
        try:
            stat = path.stat()
        except OSError:
            continue  # deleted between listing and stat: the next look sees it gone
        found.append((str(path), stat.st_mtime_ns, stat.st_size))
    return tuple(sorted(found))


def same_catalogue(a: Catalog, b: Catalog) -> bool:
    """Equal offerings from the same places: a matcher built for one serves the other as is
    (answers name the file and line an offering came from)."""
    return a == b and [o.source for o in a] == [o.source for o in b]


@dataclass(frozen=True, slots=True)
class ReloadResult:
    """What a reload did: a diff on success, else the problems (the old catalogue stays)."""

    diff: CatalogDiff | None
    problems: tuple[Problem, ...]
    offerings: int
    generation: int | None = None
    """The new generation, when the reload was announced to the other workers."""

    @property
    def ok(self) -> bool:
        return self.diff is not None

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.is_error)


class LiveCatalogue:
    """The current matcher of one worker, reloadable from disk and from the store's signal."""

    def __init__(self, knowledge: Path, mode: str, matcher: Matcher,
                 guard: BestEffort | None = None, *, watch: bool = True,
                 webhooks: KnownWebhooks | None = None,
                 loaded_from: Fingerprint | None = None,
                 handover: Callable[[], object] | None = None) -> None:
        """`loaded_from`: the files' fingerprint when `matcher` was built, if not now (a
        matcher built before gunicorn forked); an edit made since is then reloaded.
        `handover`: who builds the matcher of a changed catalogue instead of this process."""
        self.knowledge = knowledge
        self.mode = mode
        self.watch = watch
        self.webhooks = webhooks
        """The webhooks request forms may name here: a reload naming another is an error."""
        self._matcher = matcher
        self._guard = guard
        self._handover = handover
        self._reload_lock = threading.Lock()
        self._fingerprint = fingerprint(knowledge) if loaded_from is None else loaded_from
        self._generation = self._read_generation() or 0
        self._record_served()

    @property
    def matcher(self) -> Matcher:
        return self._matcher

    @property
    def catalog(self) -> Catalog:
        return self._matcher.catalog

    @property
    def generation(self) -> int:
        return self._generation

    def _read_generation(self) -> int | None:
        if self._guard is None:
            return None
        store = self._guard.store
        return self._guard.run("reading the reload generation", store.generation, None)

    def _record_served(self) -> None:
        """Tell the store which catalogue is served: the reports on the command line name
        offerings from it (`concierge stats` run where the knowledge files are not)."""
        if self._guard is None:
            return
        store, catalog = self._guard.store, self.catalog
        self._guard.run("recording the served catalogue", lambda: store.record_served(
            str(self.knowledge.resolve()), (o.id for o in catalog)), None)

    def reload(self) -> ReloadResult:
        """Re-read the knowledge directory; swap the matcher only if it has no errors."""
        with self._reload_lock:
            current_print = fingerprint(self.knowledge)
            report = check_knowledge(self.knowledge, webhooks=self.webhooks)
            # Remember what was read even when it failed: a broken file is reported once,
            # not on every poll, and the next edit triggers the next attempt.
            self._fingerprint = current_print
            if report.catalog is None:
                log.error("reload of %s failed; still serving %d offerings:\n%s",
                          self.knowledge, len(self.catalog),
                          "\n".join(p.render() for p in report.errors))
                return ReloadResult(None, report.problems, len(self.catalog))
            diff = self.catalog.diff(report.catalog)
            if same_catalogue(report.catalog, self.catalog):
                log.info("reloaded %s: %d offerings, unchanged; keeping the matcher",
                         self.knowledge, len(report.catalog))
                return ReloadResult(diff, report.problems, len(report.catalog))
            if self._handover is not None:
                log.info("reloaded %s: %d offerings; %s; handed over to be built",
                         self.knowledge, len(report.catalog), diff.summary())
                self._handover()
                return ReloadResult(diff, report.problems, len(report.catalog))
            self._matcher = build_matcher(report.catalog, self.mode)
            log.info("reloaded %s: %d offerings; %s", self.knowledge, len(report.catalog),
                     diff.summary())
            if not diff.is_empty:
                self._record_served()
            return ReloadResult(diff, report.problems, len(report.catalog))

    def reload_everywhere(self) -> ReloadResult:
        """Reload here and, on success, tell every other worker through the generation."""
        result = self.reload()
        if not result.ok or self._guard is None:
            return result
        store = self._guard.store
        generation = self._guard.run("announcing a reload", store.bump_generation, None)
        if generation is None:
            return result
        self._generation = max(self._generation, generation)
        return ReloadResult(result.diff, result.problems, result.offerings, generation)

    def poll(self) -> ReloadResult | None:
        """One cheap look for a newer generation or changed files; reload if there is one."""
        generation = self._read_generation()
        if generation is not None and generation > self._generation:
            log.info("catalogue generation %d (ours %d): reloading", generation,
                     self._generation)
            self._generation = generation
            return self.reload()
        if self.watch and fingerprint(self.knowledge) != self._fingerprint:
            log.info("knowledge files changed on disk: reloading")
            return self.reload()
        return None


class Poller:
    """A daemon thread that runs `tasks` every `interval` seconds until stopped.

    A task that raises is logged and the loop goes on: a poller that dies silently
    would leave a worker on an old catalogue for good.
    """

    def __init__(self, interval: float, tasks: Sequence[Callable[[], object]],
                 name: str = "concierge-poller") -> None:
        self.interval = interval
        self.tasks = tuple(tasks)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> Poller:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for task in self.tasks:
                try:
                    task()
                except Exception:
                    log.exception("background task %r failed", task)
