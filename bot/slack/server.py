"""Running the Slack app until stopped: Socket Mode in one process, or HTTP under gunicorn.

HTTP mode is a gunicorn master and `WEB_CONCURRENCY` worker processes:

    master  bind $HOST:$PORT ─▶ load the catalogue, the model and the catalogue's
            vectors (`Master.load`) ─▶ gc.freeze() ─▶ fork the workers
    worker  database connections, Bolt app, listener threads, reload poller and takeover
            heartbeat, built after the fork around the master's matcher (`app_with_pollers`)
    reload  a worker whose reload finds the catalogue changed does not build it: it sends the
            master SIGHUP and answers with what it has meanwhile; the master builds the new
            matcher and, when the catalogue differs from its own, forks new workers with it
            and retires the old ones gracefully (gunicorn's HUP): one copy per host, always

Why the master loads: memory a process wrote before fork() stays shared with its children
until one of them writes to it, so the catalogue's vectors and indexes cost one copy per
host instead of one per worker (the model's weights are shared anyway, mapped from their
file: `bot.matching.encoder`). `gc.freeze()` keeps the workers' garbage collector from
writing to the master's objects, which would copy each page it touched. The figures are
in docs/performance.md.

The master starts no thread and opens no connection: a thread does not survive fork() (a
lock it held stays locked in the child), and a connection used by two processes corrupts
both. It binds its port before loading, so a platform's boot timeout (Heroku's: bound within
60 s) does not wait for the first embedding of a large catalogue.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.catalogue.loader import check_knowledge, load_catalog
from bot.live import Fingerprint, fingerprint, same_catalogue
from bot.matching.engine import build_matcher
from bot.matching.matcher import Matcher
from bot.slack.app import (
    EVENTS_PATH,
    SlackConfig,
    app_with_pollers,
    bind_address,
    check_token,
    load_matcher,
    open_store,
    wsgi_app,
)

if TYPE_CHECKING:
    from wsgiref.types import WSGIApplication

log = logging.getLogger(__name__)

# A listener may wait out a rate limit after the response: time it gets to finish when its
# worker is asked to stop (shutdown, or replaced after a reload).
GRACEFUL_TIMEOUT = 30


def serve(config: SlackConfig) -> int:
    """Run until stopped: Socket Mode when an app token is set, else HTTP under gunicorn."""
    check_token(config)
    # Fail here, once, with the loader's report, rather than in every worker.
    load_catalog(config.knowledge, webhooks=config.webhooks.known())
    # Migrate before workers start, so they do not all queue for the migration lock; the
    # connection is closed again before gunicorn forks.
    open_store(config.database_url).store.close()
    if not config.operations.user_hash_key:
        log.warning("CONCIERGE_USER_HASH_KEY is not set: questions are recorded without "
                    "any user identifier, and reports cannot count people")
    if config.socket_mode:
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        log.info("starting in Socket Mode")
        app, _ = app_with_pollers(config)
        SocketModeHandler(app, config.app_token).start()  # type: ignore[no-untyped-call]
        return 0
    return run_http(config)


@dataclass(frozen=True)
class Preloaded:
    """What the master builds for its workers: the matcher, and the knowledge files'
    fingerprint from just before it read them (an edit made since is reloaded by the
    workers)."""

    matcher: Matcher
    fingerprint: Fingerprint


class Master:
    """The gunicorn master's own state: the matcher its workers start with."""

    def __init__(self, config: SlackConfig) -> None:
        self.config = config
        self.preloaded: Preloaded | None = None

    def load(self) -> Preloaded:
        started = time.monotonic()
        files = fingerprint(self.config.knowledge)
        self.preloaded = Preloaded(load_matcher(self.config), files)
        _share_with_children()
        log.info("loaded %d offerings (%s matching) in %.1f s; forking %d workers",
                 len(self.preloaded.matcher.catalog), self.preloaded.matcher.mode,
                 time.monotonic() - started, self.config.workers)
        return self.preloaded

    def refresh(self) -> bool:
        """Load the knowledge directory again; True when it differs from the workers' and the
        workers should be replaced. A catalogue with errors changes nothing (the workers keep
        serving their last good one, and report the errors themselves)."""
        current = self.preloaded
        files = fingerprint(self.config.knowledge)
        report = check_knowledge(self.config.knowledge, webhooks=self.config.webhooks.known())
        if report.catalog is None:
            log.error("the master could not reload %s (%d errors); keeping the workers",
                      self.config.knowledge, len(report.errors))
            return False
        if current is not None and same_catalogue(report.catalog, current.matcher.catalog):
            log.info("the catalogue is as the workers started with it; keeping them")
            return False
        started = time.monotonic()
        self.preloaded = Preloaded(build_matcher(report.catalog, self.config.matcher_mode),
                                   files)
        del current
        _share_with_children()
        log.info("reloaded %d offerings in the master in %.1f s; replacing the workers",
                 len(report.catalog), time.monotonic() - started)
        return True


def _share_with_children() -> None:
    """Frees what the master no longer uses, then freezes the rest: objects the garbage
    collector never visits again, so a worker's collections do not copy their pages."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    _return_free_memory()
    if threading.active_count() > 1:
        # Nothing in the master should start threads; one alive now is copied into no worker.
        log.warning("threads alive in the gunicorn master before forking: %s",
                    [t.name for t in threading.enumerate()])


def _return_free_memory() -> None:
    """Gives the heap's free pages back to the system (glibc's malloc_trim): embedding a
    catalogue leaves tens of MB of freed buffers that the master would otherwise keep, and
    pass on to every worker it forks. Elsewhere than glibc, nothing to do."""
    try:
        libc = ctypes.CDLL(None)
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        pass


def ask_master_to_reload(master_pid: int) -> Callable[[], None]:
    """A worker's `handover`: SIGHUP to the master it was forked from, unless it has died
    (the worker then has another parent, which must not get the signal)."""

    def notify() -> None:
        if os.getppid() == master_pid:
            os.kill(master_pid, signal.SIGHUP)

    return notify


def run_http(config: SlackConfig) -> int:
    from gunicorn.app.base import BaseApplication  # type: ignore[import-untyped]
    from gunicorn.arbiter import Arbiter  # type: ignore[import-untyped]

    from bot.slack.worker import REQUEST_THREADS, BufferingWorker

    master = Master(config)

    class ConciergeArbiter(Arbiter):  # type: ignore[misc]
        def handle_hup(self) -> None:
            # gunicorn's HUP forks new workers and retires the old ones gracefully; here only
            # when the master's reload changed the catalogue, since every worker that
            # reloaded the same edit sends one. An exception here would stop gunicorn
            # altogether: the workers then keep serving what they have.
            try:
                changed = master.refresh()
            except Exception:
                log.exception("the master could not reload the catalogue; keeping the workers")
                return
            if changed:
                super().handle_hup()

    class ConciergeServer(BaseApplication):  # type: ignore[misc]
        """gunicorn without its command line: settings come from SlackConfig."""

        def load_config(self) -> None:
            self.cfg.set("bind", bind_address(config.host, config.port))
            self.cfg.set("workers", config.workers)
            # Requests are read whole by each worker's main loop before a thread answers
            # them: slow or idle clients cannot hold the workers (bot/slack/worker.py).
            self.cfg.set("worker_class", BufferingWorker)
            self.cfg.set("threads", REQUEST_THREADS)
            self.cfg.set("keepalive", 0)
            self.cfg.set("proc_name", "concierge")
            self.cfg.set("accesslog", "-")
            self.cfg.set("graceful_timeout", GRACEFUL_TIMEOUT)
            # Runs in the master once the port is bound, before the first fork.
            self.cfg.set("when_ready", _when_ready)
            if "control_socket_disable" in self.cfg.settings:
                # gunicorn 24+ opens a control socket under $HOME by default (and serves it
                # from a thread in the master); nothing here uses it.
                self.cfg.set("control_socket_disable", True)

        def load(self) -> WSGIApplication:
            # Runs in each worker after the fork: every worker gets its own Bolt app,
            # threads and database connections around the master's matcher.
            preloaded = master.preloaded or master.load()
            app, _ = app_with_pollers(config, matcher=preloaded.matcher,
                                      loaded_from=preloaded.fingerprint,
                                      handover=ask_master_to_reload(os.getppid()))
            return wsgi_app(app, signing_secret=config.signing_secret)

        def run(self) -> None:
            try:
                ConciergeArbiter(self).run()
            except RuntimeError as exc:  # as gunicorn's own run(): its start-up errors
                log.error("gunicorn: %s", exc)
                raise SystemExit(1) from exc

    def _when_ready(server: Any) -> None:
        master.load()

    log.info("starting HTTP mode on %s%s with %d workers",
             bind_address(config.host, config.port), EVENTS_PATH, config.workers)
    ConciergeServer().run()
    return 0
