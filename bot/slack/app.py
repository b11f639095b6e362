"""The composition root of the Slack app: configuration, Web API client, Bolt app.

    SlackConfig.from_env()  ──▶  create_app(config)  ──▶  bot.slack.server.serve(config)
      environment, checked        WebClient + Store +       HTTP: gunicorn workers, each
      once, one clear line        live catalogue +          with its own Bolt app and
      per bad variable            recorder + handlers/      reload poller
                                                            Socket Mode: SLACK_APP_TOKEN set

Only the Slack layer and `handlers/` know Bolt. Listeners run after the HTTP response
(Bolt's `process_before_response=False`): Bolt acks events itself and waits for a
command's or button's `ack()` (at most 3 s) before answering Slack, while the
listener goes on in the app's thread pool. That holds in gunicorn's sync workers
too: the pool's threads live in the worker process and keep running after the
response; a worker leaving gracefully waits for them (interpreter exit joins them).
A worker that dies instead (SIGKILL, OOM, a lost host) leaves acknowledged events
unanswered; `bot.store.takeover` has a live worker answer them, replayed through
`replay_into(app)` unless `handlers.answers.answer_lookup` finds the dead worker's answer
in Slack, and `MarkAnswered` records when a listener is done with an event.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_bolt.listener.listener_completion_handler import ListenerCompletionHandler
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import default_retry_handlers
from slack_sdk.http_retry.builtin_handlers import (
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

from bot.admin.desk import AdminDesk, AdminPolicy
from bot.catalogue.loader import load_catalog
from bot.errors import ConfigError
from bot.live import Fingerprint, LiveCatalogue, Poller
from bot.matching.engine import build_matcher
from bot.matching.matcher import Matcher
from bot.outbox.courier import DEFAULT_GIVE_UP, Courier, CourierSettings
from bot.outbox.intake import Intake
from bot.outbox.webhooks import Webhooks
from bot.settings import knowledge_dir, matcher_mode, whole_number
from bot.slack.buttons import ButtonKeys
from bot.slack.deliver import courier_client, slack_sender
from bot.slack.digests import TICK_SECONDS, DigestSender
from bot.slack.gate import gate
from bot.slack.operations import OperationsConfig
from bot.slack.owners import OwnerPolicy
from bot.slack.replies import SERVICE_DESK_TEXT, ServiceDesk
from bot.slack.request_desk import RequestDesk
from bot.store.database import Store, database_url
from bot.store.recorder import BestEffort, Recorder
from bot.store.takeover import (
    DEFAULT_TAKEOVER_AFTER,
    Deliveries,
    Replay,
    TakeoverSettings,
    event_id_of,
    new_worker_id,
)
from handlers import Concierge
from handlers import register as register_handlers
from handlers.answers import answer_lookup

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://slack.com/api/"
# All interfaces: a platform's router reaches the app from outside its container.
DEFAULT_HOST = "0.0.0.0"
DEFAULT_PORT = 3000
DEFAULT_WORKERS = 2
EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
# Set on the response to a redelivered event that another delivery already claimed:
# Slack ignores it; logs and tests can tell a dropped duplicate from an answered event.
DUPLICATE_HEADER = "X-Concierge-Duplicate"
# Slack asks for rate-limited calls to wait `Retry-After` seconds. The wait happens in a
# listener thread after the ack, so it costs no request time; with two retries the load
# test (tests/benchmarks/load.py) lost every reply whose 429s lasted over ~2 s.
RATE_LIMIT_RETRIES = 10
# Listener threads per worker process (Bolt's default is min(32, CPUs + 4), 6 on two
# cores). Listeners mostly wait on the Web API; with 6 a slow API (2 s a call) answered
# 12 events/s per 4 workers and the backlog, held only in memory, grew to 15 s.
LISTENER_THREADS = 32
SERVER_ERROR_RETRIES = 1
# Bolt's context key marking a replay of an event this worker took over (`bot.store.takeover`).
# Only code in this process can set context: nothing in an HTTP or Socket Mode request can.
TAKEOVER_CONTEXT_KEY = "concierge_takeover"
# `takeover_after` bounds: at 2 s a heartbeat goes every 0.5 s; past 2 minutes a question
# would wait too long, and `bot.store.takeover.MAX_AGE` (5 min) must stay well above it.
MIN_TAKEOVER_AFTER = 2
MAX_TAKEOVER_AFTER = 120
# Threads per worker that look up taken-over events' answers in Slack and replay them, off
# the heartbeat thread (a lookup may wait out rate limits). A dead worker leaves a handful
# of events, a dozen when the Web API was slow; Slack rate-limits history reads per
# workspace, so more threads would only wait more.
TAKEOVER_THREADS = 4
# `give_up` bounds (seconds): at least a minute of retries; at most a day, the shortest
# retention period, so that no request is purged while still waiting for a delivery.
MIN_GIVE_UP = 60
MAX_GIVE_UP = 86_400
MEMBER_PAGES = 20


@dataclass(frozen=True)
class SlackConfig:
    """Everything `concierge serve` reads from the environment, checked once at start."""

    bot_token: str = field(repr=False)
    """`SLACK_BOT_TOKEN`: the bot token (`xoxb-…`) from the app's *OAuth & Permissions* page."""
    signing_secret: str = field(repr=False)
    """`SLACK_SIGNING_SECRET`: verifies that HTTP requests come from Slack (HTTP mode)."""
    knowledge: Path
    """`CONCIERGE_KNOWLEDGE` (or `--knowledge`): the catalogue directory."""
    app_token: str | None = field(default=None, repr=False)
    """`SLACK_APP_TOKEN` (`xapp-…`): set it to run in Socket Mode instead of HTTP."""
    api_url: str = DEFAULT_API_URL
    """`SLACK_API_URL`: the Web API base URL (GovSlack, a proxy, or a test server)."""
    matcher_mode: str = "auto"
    """`CONCIERGE_MATCHER`: auto, lexical or semantic."""
    host: str = DEFAULT_HOST
    """`HOST`: the address HTTP mode listens on (all interfaces by default)."""
    port: int = DEFAULT_PORT
    """`PORT`: the port HTTP mode listens on."""
    workers: int = DEFAULT_WORKERS
    """`WEB_CONCURRENCY`: gunicorn worker processes in HTTP mode."""
    database_url: str = ""
    """`DATABASE_URL`, else a SQLite file in `CONCIERGE_DATA_DIR` (default `./data`)."""
    service_desk: ServiceDesk = field(default_factory=ServiceDesk)
    """`CONCIERGE_SERVICE_DESK_TEXT` / `CONCIERGE_SERVICE_DESK_URL`: the "nothing fits" pointer."""
    operations: OperationsConfig = field(default_factory=OperationsConfig)
    """Admins, user hashing, retention and reloading (`bot.slack.operations`)."""
    takeover_after: int = DEFAULT_TAKEOVER_AFTER
    """`CONCIERGE_TAKEOVER_AFTER`: seconds a worker may be silent before the events it
    acknowledged but did not answer are answered by another (`bot.store.takeover`), and the
    requests it was delivering are delivered by another (`bot.outbox.courier`)."""
    webhooks: Webhooks = field(default_factory=Webhooks)
    """`CONCIERGE_WEBHOOK_<NAME>_URL` / `_SECRET`: where request forms deliver to tools."""
    give_up: int = int(DEFAULT_GIVE_UP.total_seconds())
    """`CONCIERGE_DELIVERY_GIVE_UP`: seconds a request's delivery is retried before it is
    reported to the requester and the admins as undeliverable."""

    @property
    def socket_mode(self) -> bool:
        return self.app_token is not None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, knowledge: str | None = None,
                 matcher: str | None = None) -> SlackConfig:
        """Read and check the environment; a bad variable raises `ConfigError` naming it."""
        env = os.environ if env is None else env

        def get(name: str) -> str:
            return env.get(name, "").strip()

        app_token = get("SLACK_APP_TOKEN") or None
        if app_token is not None and not app_token.startswith("xapp-"):
            raise ConfigError("must be an app-level token starting with xapp- (Basic "
                              "Information → App-Level Tokens), or unset for HTTP mode",
                              setting="SLACK_APP_TOKEN")
        bot_token = checked_bot_token(get("SLACK_BOT_TOKEN"))
        signing_secret = get("SLACK_SIGNING_SECRET")
        if app_token is None and not signing_secret:
            _required(get, "SLACK_SIGNING_SECRET", "Basic Information → Signing Secret; "
                      "HTTP mode needs it to verify requests")
        if signing_secret:
            _check_signing_secret(signing_secret)
        desk_url = get("CONCIERGE_SERVICE_DESK_URL") or None
        if desk_url is not None:
            # Shown as a button to every employee, like the catalogue's links: https only.
            _check_url(desk_url, "CONCIERGE_SERVICE_DESK_URL", https_only=True)
        return cls(
            bot_token=bot_token,
            signing_secret=signing_secret,
            app_token=app_token,
            api_url=_api_url(get("SLACK_API_URL")),
            knowledge=knowledge_dir(knowledge or get("CONCIERGE_KNOWLEDGE") or None),
            matcher_mode=matcher_mode(matcher or get("CONCIERGE_MATCHER") or None),
            host=listen_host(get("HOST")),
            port=whole_number(get, "PORT", DEFAULT_PORT, 1, 65535),
            workers=whole_number(get, "WEB_CONCURRENCY", DEFAULT_WORKERS, 1, 256),
            database_url=database_url(env),
            service_desk=ServiceDesk(text=get("CONCIERGE_SERVICE_DESK_TEXT") or SERVICE_DESK_TEXT,
                                     url=desk_url),
            operations=OperationsConfig.from_env(env),
            takeover_after=whole_number(get, "CONCIERGE_TAKEOVER_AFTER",
                                        DEFAULT_TAKEOVER_AFTER, MIN_TAKEOVER_AFTER,
                                        MAX_TAKEOVER_AFTER),
            webhooks=Webhooks.from_env(env),
            give_up=whole_number(get, "CONCIERGE_DELIVERY_GIVE_UP",
                                 int(DEFAULT_GIVE_UP.total_seconds()), MIN_GIVE_UP,
                                 MAX_GIVE_UP),
        )


def _required(get: Callable[[str], str], name: str, where: str) -> str:
    value = get(name)
    if not value:
        raise ConfigError(f"is not set ({where})", setting=name)
    return value


def _check_signing_secret(secret: str) -> None:
    # Every request is verified with it: a wrong one would start fine and then answer
    # every request from Slack with 401. Slack's are 32 hexadecimal characters; the
    # values most often pasted instead have other shapes (the verification token has 24
    # letters and digits, the app id starts with A).
    if re.fullmatch(r"[0-9a-f]{32}", secret):
        return
    hint = (" (this looks like the verification token, which Slack no longer uses to sign)"
            if re.fullmatch(r"[A-Za-z0-9]{24}", secret) else "")
    raise ConfigError(f"must be the 32 hexadecimal characters of Basic Information → App "
                      f"Credentials → Signing Secret, not {len(secret)} characters{hint}",
                      setting="SLACK_SIGNING_SECRET")


def listen_host(raw: str) -> str:
    """`HOST` checked: an IPv4 or IPv6 address, or a host name; empty → all interfaces."""
    if not raw:
        return DEFAULT_HOST
    try:
        return str(ipaddress.ip_address(raw.strip("[]")))
    except ValueError:
        pass
    if not re.fullmatch(r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?", raw):
        raise ConfigError(f"must be an IP address or host name to listen on (e.g. 127.0.0.1 "
                          f"or 0.0.0.0), not {raw!r}", setting="HOST")
    return raw


def bind_address(host: str, port: int) -> str:
    """gunicorn's `bind` for host and port (an IPv6 address in brackets)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _check_url(url: str, name: str, *, https_only: bool = False) -> None:
    parts = urlsplit(url)
    schemes = ("https",) if https_only else ("http", "https")
    if parts.scheme not in schemes or not parts.netloc:
        wanted = "an https:// URL" if https_only else "an http(s) URL"
        raise ConfigError(f"must be {wanted}, not {url!r}", setting=name)


def _api_url(raw: str) -> str:
    if not raw:
        return DEFAULT_API_URL
    _check_url(raw, "SLACK_API_URL")
    # slack_sdk joins method names onto the base URL, so it must end with a slash.
    return raw if raw.endswith("/") else raw + "/"


def make_client(config: SlackConfig) -> WebClient:
    """A Web API client that waits out rate limits and retries connection and 5xx errors."""
    return web_client(config.bot_token, config.api_url)


def web_client(token: str, api_url: str = DEFAULT_API_URL) -> WebClient:
    """A Web API client for `token` that waits out rate limits and retries connection and
    5xx errors (also for `concierge digest --send`, which needs no signing secret).

    The rate-limit and server-error handlers are added to slack_sdk's defaults (which
    retry connection errors), not put in their place.
    """
    handlers = [*default_retry_handlers(),
                RateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES),
                ServerErrorRetryHandler(max_retry_count=SERVER_ERROR_RETRIES)]
    return WebClient(token=token, base_url=_api_url(api_url), retry_handlers=handlers)


def checked_bot_token(raw: str) -> str:
    """`SLACK_BOT_TOKEN` checked: a `ConfigError` naming it when missing or not a bot token."""
    if not raw:
        raise ConfigError("is not set (the bot token from OAuth & Permissions)",
                          setting="SLACK_BOT_TOKEN")
    if not raw.startswith("xoxb-"):
        raise ConfigError("must be a bot token starting with xoxb- (OAuth & Permissions "
                          "→ Bot User OAuth Token)", setting="SLACK_BOT_TOKEN")
    return raw


def check_token(config: SlackConfig) -> dict[str, Any]:
    """Ask Slack who the token belongs to; a rejected token is a `ConfigError`."""
    try:
        response = make_client(config).auth_test()
    except SlackApiError as exc:
        error = exc.response.get("error", "unknown error")
        raise ConfigError(f"Slack rejected the token ({error})",
                          setting="SLACK_BOT_TOKEN") from exc
    except OSError as exc:
        raise ConfigError(f"cannot reach the Slack Web API at {config.api_url} ({exc})",
                          setting="SLACK_API_URL") from exc
    return dict(response.data) if isinstance(response.data, dict) else {}


def dedupe_middleware(deliveries: Deliveries) -> Callable[..., BoltResponse]:
    """A global middleware answering each Events API `event_id` once across all workers.

    It runs after signature verification (so forged requests cannot burn event ids)
    and before the listeners. Claiming happens before the ack, so a retry that races
    the first delivery on another worker still finds the claim; the claim also stores
    the event and this worker's id, so that another worker can answer it should this
    one die before it has (`bot.store.takeover`). An event this worker took over is replayed
    with `TAKEOVER_CONTEXT_KEY` set: its claim is already ours, so it passes, once (the
    takeover UPDATE succeeds for one worker only). With the database down, every event
    is handled: better to risk answering twice than to drop a question.
    """

    def dedupe_events(body: dict[str, Any], context: dict[str, Any],
                      next_: Callable[[], BoltResponse], logger: logging.Logger) -> BoltResponse:
        event_id = event_id_of(body)
        if event_id is not None:
            if context.get(TAKEOVER_CONTEXT_KEY) == event_id:
                return next_()
            if not deliveries.claim(event_id, body):
                logger.info("event %s already handled; ignoring this redelivery", event_id)
                return BoltResponse(status=200, body="", headers={DUPLICATE_HEADER: event_id})
        return next_()

    return dedupe_events


class MarkAnswered(ListenerCompletionHandler):
    """Tells `Deliveries` that a listener is done with an event: replied, ignored it or
    failed. Bolt calls its completion handler in the listener thread after every
    listener, in a `finally`, so this one hook covers every listener there is or will be,
    including the catch-all that ignores unknown events (which counts as finished too).
    Commands and button clicks carry no event id and pass untouched."""

    def __init__(self, deliveries: Deliveries, then: ListenerCompletionHandler) -> None:
        self.deliveries = deliveries
        self.then = then

    def handle(self, request: BoltRequest, response: BoltResponse | None) -> None:
        try:
            self.then.handle(request=request, response=response)
        finally:
            event_id = event_id_of(request.body)
            if event_id is not None:
                try:
                    self.deliveries.finished(event_id)
                except Exception:  # a bug here must not kill the listener thread's future
                    log.exception("could not record event %s as answered", event_id)


def replay_into(app: App) -> Replay:
    """Replays a taken-over event through `app`, as a new delivery: the same middleware and
    listeners answer it. Socket Mode requests skip signature checks (Bolt verifies nothing
    on them, the WebSocket being authenticated); this body was verified when first received
    and has since lived only in Concierge's own database."""

    def replay(event_id: str, body: dict[str, Any]) -> None:
        response = app.dispatch(BoltRequest(body=body, mode="socket_mode",
                                            context={TAKEOVER_CONTEXT_KEY: event_id}))
        if response.status >= 300:
            raise RuntimeError(f"replaying event {event_id} got HTTP status {response.status}")

    return replay


def load_matcher(config: SlackConfig) -> Matcher:
    return build_matcher(load_catalog(config.knowledge, webhooks=config.webhooks.known()),
                         config.matcher_mode)


def open_store(url: str) -> BestEffort:
    """The store behind its best-effort guard, migrated if the database is up. When it is
    down, Concierge still answers (one warning) and migrates once the database is back."""
    guard = BestEffort(Store(url, migrate=False), schema_ready=False)
    guard.run("migrating the schema", lambda: None, None)
    return guard


def usergroup_members(client: WebClient) -> Callable[[str], list[str]]:
    """Members of a usergroup, via `usergroups.users.list` (needs `usergroups:read`)."""

    def members(group: str) -> list[str]:
        response = client.usergroups_users_list(usergroup=group)
        return [str(u) for u in response.get("users") or []]

    return members


def channel_members(client: WebClient) -> Callable[[str], list[str]]:
    """Members of a channel, via `conversations.members` (needs `channels:read`, and
    `groups:read` for private channels), a page of 1000 at a time."""

    def members(channel: str) -> list[str]:
        found: list[str] = []
        cursor = None
        for _ in range(MEMBER_PAGES):
            response = client.conversations_members(channel=channel, limit=1000,
                                                    cursor=cursor)
            found += [str(u) for u in response.get("members") or []]
            cursor = (response.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                break
        return found

    return members


@dataclass(frozen=True)
class Runtime:
    """One worker's long-lived parts: what the listeners use and what the poller refreshes."""

    concierge: Concierge
    guard: BestEffort
    recorder: Recorder
    live: LiveCatalogue
    deliveries: Deliveries
    courier: Courier
    digests: DigestSender | None = None
    """Sends the owners' digests when due; None when CONCIERGE_DIGEST is off."""

    def start_poller(self, interval: float) -> Poller:
        """Check for reloads (and purge old records once a day) every `interval` seconds."""
        return Poller(interval, [self.live.poll, self.recorder.purge_if_due]).start()

    def start_takeover(self, app: App) -> Poller:
        """Heartbeat and take over dead workers' events (`bot.store.takeover`), on a thread of its
        own: a reload on the poller above can take seconds, and a heartbeat waiting for it
        would make this live worker look dead. The first heartbeat is written now, before
        this worker serves anything."""
        self.deliveries.beat()
        replay = replay_into(app)
        return Poller(self.deliveries.settings.beat_every,
                      [lambda: self.deliveries.tick(replay)],
                      name="concierge-takeover").start()

    def start_courier(self) -> Courier:
        """Deliver requests made in Slack (`bot.outbox.courier`), on a thread of its own:
        webhooks can be slow, and nothing else should wait for them."""
        return self.courier.start()

    def start_digests(self) -> Poller | None:
        """Look for a due digest period every minute, on a thread of its own: sending waits
        on Slack's rate limits, which must hold up neither reloads nor heartbeats. Every
        worker looks; the claim in the database lets one send (`bot.store.digests`)."""
        if self.digests is None:
            return None
        return Poller(TICK_SECONDS, [self.digests.tick], name="concierge-digest").start()


def button_keys(config: SlackConfig) -> ButtonKeys:
    """The key that ties cards' buttons to their askers, from a secret every worker and host
    of this app shares: the signing secret (HTTP), else the app-level token (Socket Mode)."""
    return ButtonKeys.from_secret(config.signing_secret or config.app_token or config.bot_token)


def build_runtime(config: SlackConfig, client: WebClient, *, matcher: Matcher | None = None,
                  store: Store | None = None, loaded_from: Fingerprint | None = None,
                  handover: Callable[[], object] | None = None) -> Runtime:
    ops = config.operations
    guard = open_store(config.database_url) if store is None else BestEffort(store)
    store = guard.store
    recorder = Recorder(guard, ops.recorder)
    recorder.purge_if_due()
    live = LiveCatalogue(config.knowledge, config.matcher_mode, matcher or load_matcher(config),
                         guard, watch=ops.watch_knowledge, webhooks=config.webhooks.known(),
                         loaded_from=loaded_from, handover=handover)
    admins = AdminPolicy(ops.admins, ops.admin_group, usergroup_members(client))
    # Made here, after gunicorn forked: each worker process gets its own id and threads.
    # One id for both: the heartbeat that keeps its events also keeps its deliveries.
    worker_id = new_worker_id()
    courier = Courier(
        guard, slack_sender(courier_client(config.bot_token, config.api_url)),
        config.webhooks,
        CourierSettings(give_up=timedelta(seconds=config.give_up),
                        stale_after=timedelta(seconds=config.takeover_after),
                        admins=tuple(sorted(ops.admins))),
        worker_id=worker_id)
    owners = OwnerPolicy(admins, channel_members=channel_members(client),
                         group_members=usergroup_members(client))
    buttons = button_keys(config)
    requests = RequestDesk(live, Intake(guard, wake=courier.wake), owners, recorder,
                           buttons=buttons)
    concierge = Concierge(live, config.service_desk, recorder, admins,
                          AdminDesk(live, store, ops.reload_interval), requests,
                          buttons=buttons)
    deliveries = Deliveries(
        guard, TakeoverSettings(stale_after=float(config.takeover_after)),
        worker_id=worker_id, lookup=answer_lookup(client),
        executor=ThreadPoolExecutor(max_workers=TAKEOVER_THREADS,
                                    thread_name_prefix="takeover-lookup"))
    digests = None
    if ops.digest.schedule is not None:
        digests = DigestSender(store, client, lambda: live.matcher, ops.digest,
                               worker_id=deliveries.worker_id,
                               stale_after=timedelta(seconds=config.takeover_after))
    return Runtime(concierge, guard, recorder, live, deliveries, courier, digests)


def create_app(config: SlackConfig, *, matcher: Matcher | None = None,
               store: Store | None = None, client: WebClient | None = None,
               listener_executor: Executor | None = None,
               runtime: Runtime | None = None) -> App:
    """The Bolt app with every listener registered. Calls `auth.test` once (Bolt checks
    the token and learns the bot's own user id, to ignore its own messages).

    Without `runtime` one is built here; nothing polls for reloads then (tests, one-off
    apps): `serve` builds the runtime itself and starts its poller.
    """
    _quiet_token_warning()
    client = client or make_client(config)
    runtime = runtime or build_runtime(config, client, matcher=matcher, store=store)
    app = App(
        client=client,
        signing_secret=config.signing_secret,
        # Socket Mode requests arrive over an authenticated WebSocket, unsigned.
        request_verification_enabled=not config.socket_mode,
        process_before_response=False,
        listener_executor=listener_executor or ThreadPoolExecutor(
            max_workers=LISTENER_THREADS, thread_name_prefix="listener"),
        name="concierge",
    )
    app.middleware(dedupe_middleware(runtime.deliveries))
    runner = app.listener_runner
    runner.listener_completion_handler = MarkAnswered(runtime.deliveries,
                                                      runner.listener_completion_handler)
    register_handlers(app, runtime.concierge)
    # Registered last, so it only sees events no listener above took: acknowledging them
    # (200 instead of Bolt's 404) stops Slack from redelivering what nothing here handles.
    app.event(re.compile(r".*"))(ignore_unknown_event)
    return app


def ignore_unknown_event(event: dict[str, Any], logger: logging.Logger) -> None:
    logger.info("ignoring event of type %r: nothing here handles it", event.get("type"))


class _DropMessage(logging.Filter):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != self.text


def _quiet_token_warning() -> None:
    # Bolt reads SLACK_BOT_TOKEN from the environment even when given a client, then warns
    # that the token is unused. Our client carries that same token: nothing to warn about.
    bolt_log = logging.getLogger("slack_bolt.App")
    if not any(isinstance(f, _DropMessage) for f in bolt_log.filters):
        bolt_log.addFilter(_DropMessage("As you gave `client` as well, `token` will be unused."))


def wsgi_app(app: App, *, signing_secret: str | None,
             path: str = EVENTS_PATH) -> WSGIApplication:
    """Bolt's WSGI adapter at `path` behind the request gate (size, signature and shape
    checked before Bolt parses anything), plus `GET /healthz` for load balancers."""
    slack = SlackRequestHandler(app, path=path)
    gated = gate(slack, signing_secret=signing_secret)

    def application(environ: WSGIEnvironment,
                    start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == HEALTH_PATH and environ.get("REQUEST_METHOD") in (
                "GET", "HEAD"):
            start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8"),
                                      ("Content-Length", "3")])
            return [b"ok\n"]
        if environ.get("PATH_INFO") == path and environ.get("REQUEST_METHOD") == "POST":
            return gated(environ, start_response)
        return slack(environ, start_response)

    return application


def app_with_pollers(config: SlackConfig, *, matcher: Matcher | None = None,
                     loaded_from: Fingerprint | None = None,
                     handover: Callable[[], object] | None = None) -> tuple[App, list[Poller]]:
    """The app of one serving process with its reload poller, takeover heartbeat, courier
    and digests running (`Runtime`); `matcher`, `loaded_from` and `handover` as for
    `LiveCatalogue`. Starts threads and opens database connections: under gunicorn, call it
    in the worker."""
    client = make_client(config)
    runtime = build_runtime(config, client, matcher=matcher, loaded_from=loaded_from,
                            handover=handover)
    app = create_app(config, client=client, runtime=runtime)
    runtime.start_courier()
    pollers = [runtime.start_poller(config.operations.reload_interval),
               runtime.start_takeover(app)]
    digests = runtime.start_digests()
    return app, [*pollers, *([digests] if digests is not None else [])]
