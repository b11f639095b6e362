"""Who may press a request's Taken / Done / Decline buttons.

    a Concierge admin                                   (CONCIERGE_ADMINS, _ADMIN_GROUP)
    the owner contact, when it is a user (U…)           (the request went to their DM)
    a member of the owner contact's usergroup (S…)      (usergroups.users.list)
    a member of a channel the request was posted to,    (conversations.members: the
      pressing the button in that channel                channels:read / groups:read scopes)

The last rule is why pressing in the channel is not enough by itself: anyone in the
workspace can open a public channel and press a button without being in it. Member lists
are cached for a minute, so a burst of clicks costs one lookup, and a lookup that fails
grants nothing (the presser is asked to try again or to ask an admin).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Collection, Sequence

from bot.admin.desk import AdminPolicy
from bot.outbox.intake import MESSAGE, RequestDetails
from bot.store.requests import ItemRow

log = logging.getLogger("concierge.requests")

MEMBER_CACHE_SECONDS = 60.0
_USER = re.compile(r"[UW][A-Z0-9]{2,}")
_GROUP = re.compile(r"S[A-Z0-9]{6,}")

Members = Callable[[str], Collection[str]]


class OwnerPolicy:
    def __init__(self, admins: AdminPolicy, *, channel_members: Members,
                 group_members: Members, cache_seconds: float = MEMBER_CACHE_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.admins = admins
        self._channel_members = channel_members
        self._group_members = group_members
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str], tuple[float, frozenset[str]]] = {}

    def may_act(self, user: str | None, details: RequestDetails, items: Sequence[ItemRow],
                clicked_in: str | None) -> bool:
        if not user:
            return False
        contact = details.owner_contact or ""
        if user == contact and _USER.fullmatch(contact):
            return True
        if self.admins.is_admin(user):
            return True
        if _GROUP.fullmatch(contact) and user in self._members("group", contact):
            return True
        posted_in = {i.message_channel for i in items
                     if i.kind == MESSAGE and i.message_channel}
        posted_in |= {d.target for d in details.destinations if d.kind == MESSAGE}
        if clicked_in and clicked_in in posted_in and clicked_in[:1] in ("C", "G"):
            return user in self._members("channel", clicked_in)
        return False

    def _members(self, kind: str, what: str) -> frozenset[str]:
        now = self._clock()
        with self._lock:
            cached = self._cache.get((kind, what))
            if cached is not None and now - cached[0] < self._cache_seconds:
                return cached[1]
        lookup = self._channel_members if kind == "channel" else self._group_members
        try:
            members = frozenset(lookup(what))
        except Exception as exc:  # whatever the lookup raises, it must not grant anything
            log.warning("could not list the members of %s %s (%s); only the owner and admins "
                        "may change its requests until it works", kind, what, exc)
            return frozenset()
        with self._lock:
            self._cache[(kind, what)] = (now, members)
        return members
