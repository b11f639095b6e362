"""Where things are and which mode to run in, from flags and environment variables."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from bot.errors import ConfigError

MATCHER_MODES = ("auto", "lexical", "semantic")


def repo_root() -> Path:
    """The checkout this package was installed from (editable installs and `python -m bot`)."""
    return Path(__file__).resolve().parent.parent


def knowledge_dir(flag: str | None = None) -> Path:
    """`--knowledge DIR`, else `CONCIERGE_KNOWLEDGE`, else the sample catalogue in the checkout."""
    if flag:
        return Path(flag)
    env = os.environ.get("CONCIERGE_KNOWLEDGE", "").strip()
    if env:
        return Path(env)
    return repo_root() / "knowledge"


def matcher_mode(flag: str | None = None) -> str:
    """`--matcher`, else `CONCIERGE_MATCHER`, else `auto` (semantic when the model is installed)."""
    value = (flag or os.environ.get("CONCIERGE_MATCHER", "") or "auto").strip().lower()
    if value not in MATCHER_MODES:
        raise ConfigError(f"must be one of {', '.join(MATCHER_MODES)}, not {value!r}",
                          setting="CONCIERGE_MATCHER")
    return value


def cache_dir() -> Path:
    """`CONCIERGE_CACHE_DIR`, else `$XDG_CACHE_HOME/concierge`, else `~/.cache/concierge`."""
    env = os.environ.get("CONCIERGE_CACHE_DIR", "").strip()
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg) if xdg else Path.home() / ".cache") / "concierge"


def whole_number(get: Callable[[str], str], name: str, default: int, low: int, high: int) -> int:
    """The variable `name` read through `get` as a whole number in low..high; unset → default."""
    raw = get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"must be a whole number, not {raw!r}", setting=name) from None
    if not low <= value <= high:
        raise ConfigError(f"must be between {low} and {high}, not {value}", setting=name)
    return value


# The decision lines an operator can pin (`bot.matching.calibration`): variable → line.
LINE_SETTINGS = {
    "CONCIERGE_ANSWER_LINE": "answer",
    "CONCIERGE_MARGIN_LINE": "margin",
    "CONCIERGE_DECLINE_LINE": "decline",
}


def pinned_lines(get: Callable[[str], str] | None = None) -> dict[str, float]:
    """The decision lines set in the environment (`answer`, `margin`, `decline` → value in
    0..1.5); the others are learnt from the catalogue. A malformed value raises."""
    read = get or (lambda name: os.environ.get(name, ""))
    lines = {}
    for name, line in LINE_SETTINGS.items():
        raw = read(name).strip()
        if not raw:
            continue
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"must be a number such as 0.45, not {raw!r}", setting=name) from None
        if not 0.0 <= value <= 1.5:
            raise ConfigError(f"must be between 0 and 1.5, not {value}", setting=name)
        lines[line] = value
    return lines


def calibration_enabled(get: Callable[[str], str] | None = None) -> bool:
    """`CONCIERGE_CALIBRATION`: `on` (default) learns the decision lines from each catalogue;
    `off` uses the built-in defaults."""
    read = get or (lambda name: os.environ.get(name, ""))
    value = read("CONCIERGE_CALIBRATION").strip().lower() or "on"
    if value not in {"on", "off"}:
        raise ConfigError(f"must be on or off, not {value!r}", setting="CONCIERGE_CALIBRATION")
    return value == "on"
