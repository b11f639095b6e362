"""Operations settings from the environment: admins, privacy, retention, reloading, digests.

Part of `concierge serve`'s configuration (`SlackConfig.operations`), checked once
at start; a bad value is a `ConfigError` naming the variable.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from bot.admin.schedule import DigestSettings
from bot.errors import ConfigError
from bot.live import DEFAULT_RELOAD_INTERVAL
from bot.settings import whole_number
from bot.store.recorder import DEFAULT_RETENTION_DAYS, RecorderSettings

# A key shorter than this is too easy to guess, which would make the hashes reversible.
MIN_HASH_KEY_CHARS = 16
MAX_RETENTION_DAYS = 3650
# Above ten seconds, `/concierge reload` would no longer reach every worker within ten.
MAX_RELOAD_INTERVAL = 3600
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})

Getter = Callable[[str], str]


@dataclass(frozen=True)
class OperationsConfig:
    admins: frozenset[str] = frozenset()
    """`CONCIERGE_ADMINS`: Slack user ids (U…/W…), separated by commas or spaces."""
    admin_group: str | None = None
    """`CONCIERGE_ADMIN_GROUP`: a usergroup id (S…) whose members are admins too."""
    user_hash_key: bytes | None = field(default=None, repr=False)
    """`CONCIERGE_USER_HASH_KEY`: key of the HMAC stored instead of user ids; unset: none."""
    retention_days: int = DEFAULT_RETENTION_DAYS
    """`CONCIERGE_RETENTION_DAYS`: recorded questions and clicks are deleted after this."""
    reload_interval: float = DEFAULT_RELOAD_INTERVAL
    """`CONCIERGE_RELOAD_INTERVAL`: seconds between a worker's checks for a reload."""
    watch_knowledge: bool = True
    """`CONCIERGE_WATCH_KNOWLEDGE`: reload when the knowledge files change on disk."""
    digest: DigestSettings = field(default_factory=DigestSettings)
    """`CONCIERGE_DIGEST` and `CONCIERGE_DIGEST_CHANNELS`: the owners' digest
    (`bot.admin.schedule`)."""

    @property
    def recorder(self) -> RecorderSettings:
        return RecorderSettings(self.user_hash_key, timedelta(days=self.retention_days))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> OperationsConfig:
        env = os.environ if env is None else env

        def get(name: str) -> str:
            return env.get(name, "").strip()

        admins = frozenset(re.split(r"[\s,]+", get("CONCIERGE_ADMINS"))) - {""}
        for user in sorted(admins):
            if not re.fullmatch(r"[UW][A-Z0-9]{2,}", user):
                raise ConfigError(f"{user!r} is not a Slack user id (U… or W…, from the "
                                  "member's profile → Copy member ID)",
                                  setting="CONCIERGE_ADMINS")
        group = get("CONCIERGE_ADMIN_GROUP") or None
        if group is not None and not re.fullmatch(r"S[A-Z0-9]{2,}", group):
            raise ConfigError(f"must be a usergroup id (S…), not {group!r}",
                              setting="CONCIERGE_ADMIN_GROUP")
        key = get("CONCIERGE_USER_HASH_KEY") or None
        if key is not None and len(key) < MIN_HASH_KEY_CHARS:
            raise ConfigError(f"must be at least {MIN_HASH_KEY_CHARS} characters (a random "
                              "secret, e.g. from `openssl rand -hex 32`)",
                              setting="CONCIERGE_USER_HASH_KEY")
        return cls(
            admins=admins, admin_group=group,
            user_hash_key=key.encode() if key else None,
            retention_days=whole_number(get, "CONCIERGE_RETENTION_DAYS", DEFAULT_RETENTION_DAYS, 1,
                                  MAX_RETENTION_DAYS),
            reload_interval=float(whole_number(get, "CONCIERGE_RELOAD_INTERVAL",
                                         int(DEFAULT_RELOAD_INTERVAL), 1,
                                         MAX_RELOAD_INTERVAL)),
            watch_knowledge=_flag(get, "CONCIERGE_WATCH_KNOWLEDGE", True),
            digest=DigestSettings.from_env(env),
        )


def _flag(get: Getter, name: str, default: bool) -> bool:
    raw = get(name).lower()
    if not raw:
        return default
    if raw in TRUE_WORDS:
        return True
    if raw in FALSE_WORDS:
        return False
    raise ConfigError(f"must be on or off (true/false, 1/0), not {raw!r}", setting=name)
