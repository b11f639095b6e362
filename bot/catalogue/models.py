"""Domain values: offerings, the catalogue, load problems and matching decisions.

All of them are frozen dataclasses. Raw YAML never travels past `bot.catalogue.loader`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


class Kind(enum.StrEnum):
    """Whether the employee gets a thing to use or something done for them."""

    PRODUCT = "product"
    SERVICE = "service"

    def explain(self) -> str:
        """One plain sentence an employee understands."""
        if self is Kind.PRODUCT:
            return "This is a product: something you get and use yourself."
        return "This is a service: something IT does or runs for you."


class Lifecycle(enum.StrEnum):
    LIVE = "live"
    PILOT = "pilot"
    RETIRED = "retired"


@dataclass(frozen=True, slots=True)
class Owner:
    """The team accountable for an offering, and how to reach it."""

    team: str
    contact: str | None = None


class FieldType(enum.StrEnum):
    """What a form field asks for; each becomes its own Slack input element."""

    TEXT = "text"
    LONG_TEXT = "long text"
    NUMBER = "number"
    DATE = "date"
    CHOICE = "choice"
    USER = "user"
    """A person in the workspace (Slack's user picker), e.g. "for whom"."""


MAX_FORM_FIELDS = 10


@dataclass(frozen=True, slots=True)
class FormField:
    """One question of a request form, as the service owner wrote it."""

    id: str
    """Stable key of the answer (the receiving tool's field name): written, or made from
    the label."""
    label: str
    type: FieldType = FieldType.TEXT
    required: bool = False
    help: str | None = None
    options: tuple[str, ...] = ()
    """For `choice`: the options offered, in order."""


@dataclass(frozen=True, slots=True)
class DeliverTo:
    """Where a submitted request form goes; at least one of the three is set."""

    channel: str | None = None
    """A Slack channel, `#name` or `C…`/`G…` id: a message with the owner's buttons."""
    owner: bool = False
    """The owner contact (a user or a channel) gets the same message."""
    webhook: str | None = None
    """A named webhook whose URL and secret come from the environment
    (`CONCIERGE_WEBHOOK_<NAME>_URL` / `_SECRET`): a signed JSON POST."""


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """How to order an offering: a link, written steps, a form in Slack, or several."""

    url: str | None = None
    steps: str | None = None
    form: tuple[FormField, ...] = ()
    deliver_to: DeliverTo | None = None

    @property
    def has_form(self) -> bool:
        """Whether it can be requested inside Slack (a form and where it goes)."""
        return bool(self.form) and self.deliver_to is not None


@dataclass(frozen=True, slots=True)
class SourceRef:
    """Where an offering was written: file and 1-based line of its mapping."""

    path: str
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(frozen=True, slots=True)
class Offering:
    """One entry of the catalogue, as its service owner wrote it."""

    id: str
    name: str
    summary: str
    kind: Kind
    owner: Owner
    request: RequestInfo
    needs: tuple[str, ...]
    keywords: tuple[str, ...] = ()
    description: str | None = None
    category: str | None = None
    includes: tuple[str, ...] = ()
    cost: str | None = None
    service_level: str | None = None
    audience: str | None = None
    lifecycle: Lifecycle = Lifecycle.LIVE
    replaced_by: str | None = None
    source: SourceRef | None = field(default=None, compare=False)

    @property
    def is_retired(self) -> bool:
        return self.lifecycle is Lifecycle.RETIRED


@dataclass(frozen=True, slots=True)
class CatalogDiff:
    """What changed between two catalogues, by offering id."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]

    @property
    def is_empty(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def summary(self) -> str:
        if self.is_empty:
            return "no offerings changed"
        parts = []
        for label, ids in (("added", self.added), ("removed", self.removed),
                           ("changed", self.changed)):
            if ids:
                parts.append(f"{label} {len(ids)}: {', '.join(ids)}")
        return "; ".join(parts)


@dataclass(frozen=True)
class Catalog:
    """All offerings of one knowledge directory, in file order, indexed by id."""

    offerings: tuple[Offering, ...]
    root: str = ""
    _by_id: Mapping[str, Offering] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "_by_id", MappingProxyType({o.id: o for o in self.offerings})
        )

    def __len__(self) -> int:
        return len(self.offerings)

    def __iter__(self) -> Iterator[Offering]:
        return iter(self.offerings)

    def __contains__(self, offering_id: object) -> bool:
        return offering_id in self._by_id

    def get(self, offering_id: str) -> Offering | None:
        return self._by_id.get(offering_id)

    def __getitem__(self, offering_id: str) -> Offering:
        return self._by_id[offering_id]

    def live_replacement(self, offering: Offering) -> Offering | None:
        """Follow `replaced_by` until a live offering; None on a dead end or a cycle."""
        seen = {offering.id}
        current = offering
        while current.is_retired and current.replaced_by:
            nxt = self.get(current.replaced_by)
            if nxt is None or nxt.id in seen:
                return None
            seen.add(nxt.id)
            current = nxt
        return None if current.is_retired else current

    def categories(self) -> dict[str, list[Offering]]:
        """Offerings grouped by category (uncategorised last), retired ones left out."""
        groups: dict[str, list[Offering]] = {}
        for o in self.offerings:
            if not o.is_retired:
                groups.setdefault(o.category or "Other", []).append(o)
        return dict(sorted(groups.items(), key=lambda kv: (kv[0] == "Other", kv[0].lower())))

    def diff(self, newer: Catalog) -> CatalogDiff:
        old, new = self._by_id, newer._by_id
        return CatalogDiff(
            added=tuple(sorted(new.keys() - old.keys())),
            removed=tuple(sorted(old.keys() - new.keys())),
            changed=tuple(sorted(i for i in old.keys() & new.keys() if old[i] != new[i])),
        )


@dataclass(frozen=True, slots=True)
class KnownWebhooks:
    """The webhook names request forms may deliver to, as the caller of the loader knows them
    (the catalogue never reads the environment itself)."""

    names: frozenset[str]
    source: str
    """How the names were learnt, shown with a problem (e.g. which variables were read)."""
    strict: bool = True
    """True where requests are delivered from (`concierge serve`): any unknown name is an
    error. False for `concierge check` elsewhere: with no name configured at all (a laptop,
    a CI job without the secrets) a webhook cannot be checked, which is only a warning."""


class Severity(enum.StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong in the knowledge directory, located to a file and line."""

    path: str
    line: int
    field: str
    message: str
    severity: Severity = Severity.ERROR

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def render(self) -> str:
        """`path:line: field: message`, the form editors and CI logs understand."""
        prefix = "" if self.is_error else "warning: "
        return f"{self.path}:{self.line}: {self.field}: {prefix}{self.message}"


class DecisionKind(enum.StrEnum):
    ANSWER = "answer"
    CLARIFY = "clarify"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class Evidence:
    """What in an offering made it match: the field and the text that matched."""

    field: str
    text: str

    def describe(self) -> str:
        label = {"needs": "need", "keywords": "keyword"}.get(self.field, self.field)
        return f'{label} "{self.text}"'


@dataclass(frozen=True, slots=True)
class Candidate:
    """An offering the matcher considered, with a score in 0..1 and its evidence."""

    offering: Offering
    score: float
    evidence: Evidence


@dataclass(frozen=True, slots=True)
class Decision:
    """What the matcher concluded for one question.

    `offering` is set for `answer` (the live replacement when a retired offering
    matched; `retired` then holds the retired one). `candidates` are best first.
    """

    query: str
    kind: DecisionKind
    confidence: float
    candidates: tuple[Candidate, ...]
    why: str
    offering: Offering | None = None
    retired: Offering | None = None
    choice_count: int = 0
    """For `clarify`: how many of the first candidates are offered as choices (2-3)."""

    @property
    def choices(self) -> tuple[Offering, ...]:
        """The offerings offered in a `clarify`, best first."""
        if self.kind is not DecisionKind.CLARIFY:
            return ()
        return tuple(c.offering for c in self.candidates[: self.choice_count])
