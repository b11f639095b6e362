"""Shared fixtures: real YAML files in tmp_path, and a small valid-catalogue builder."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from webhookfake import FakeWebhook

WriteText = Callable[[str, str], Path]
WriteCatalogue = Callable[..., Path]


def make_offering(oid: str = "sample-offering", **fields: Any) -> dict[str, Any]:
    """A minimal valid offering mapping; keyword arguments replace or add fields."""
    base: dict[str, Any] = {
        "id": oid,
        "name": f"Offering {oid}",
        "summary": f"What you get with {oid}.",
        "kind": "service",
        "owner": {"team": "Test Team", "contact": "#it-test"},
        "request": {"url": f"https://it.example.test/request/{oid}"},
        "needs": [f"I need the {oid.replace('-', ' ')}"],
    }
    base.update(fields)
    return base


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, _session_cache: Path) -> None:
    """No test depends on the developer's environment variables, or writes to their caches."""
    monkeypatch.delenv("CONCIERGE_KNOWLEDGE", raising=False)
    monkeypatch.setenv("CONCIERGE_MATCHER", "lexical")
    monkeypatch.setenv("CONCIERGE_CACHE_DIR", str(_session_cache))


@pytest.fixture(scope="session")
def _session_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # One for the whole run: the embedding model is loaded once per process and keeps the
    # cache folder it was first given.
    return tmp_path_factory.mktemp("concierge-cache")


@pytest.fixture
def kdir(tmp_path: Path) -> Path:
    """An empty knowledge directory (created)."""
    d = tmp_path / "knowledge"
    d.mkdir()
    return d


@pytest.fixture
def write_text(kdir: Path) -> WriteText:
    """Write dedented text to `kdir/relpath` (parents created); return the path."""

    def write(relpath: str, text: str) -> Path:
        path = kdir / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return write


def dump_yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=1000)


@pytest.fixture
def write_catalogue(kdir: Path) -> WriteCatalogue:
    """Write offerings (dicts) as one `offerings:` file in kdir; return the path.

    `write_catalogue([make_offering("a"), ...], name="x.yaml", directory=other_dir)`
    """

    def write(offerings: Iterable[Mapping[str, Any]], *, name: str = "catalogue.yaml",
              directory: Path | None = None) -> Path:
        target = (directory or kdir) / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(dump_yaml({"offerings": [dict(o) for o in offerings]}),
                          encoding="utf-8")
        return target

    return write


@pytest.fixture
def new_offering() -> Callable[..., dict[str, Any]]:
    """`new_offering("id", **fields)`: a minimal valid offering mapping."""
    return make_offering


@pytest.fixture
def webhook() -> Iterator[FakeWebhook]:
    """A receiving tool on 127.0.0.1 that verifies webhook signatures (tests/webhookfake.py)."""
    fake = FakeWebhook().start()
    yield fake
    fake.stop()
