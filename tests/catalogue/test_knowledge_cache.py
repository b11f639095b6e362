"""The cache of validated knowledge files: unchanged files skip parsing and validation,
anything else is read as if there were no cache, and a bad cache costs only time."""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.catalogue import loader
from bot.catalogue.cache import MAGIC, DiskCache, encode
from bot.catalogue.loader import LoadReport, check_knowledge, load_catalog
from bot.catalogue.models import Catalog
from bot.live import LiveCatalogue
from bot.matching.engine import build_matcher

Write = Callable[..., Path]
NewOffering = Callable[..., dict[str, Any]]


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache directory of the test's own."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("CONCIERGE_CACHE_DIR", str(folder))
    return folder


class Spy:
    """Counts how often the loader parses YAML and validates an offering against the schema."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.parsed = self.validated = 0
        parse, validate = loader._parse, loader._validate_offering

        def counting_parse(text: str) -> Any:
            self.parsed += 1
            return parse(text)

        def counting_validate(*args: Any) -> Any:
            self.validated += 1
            return validate(*args)

        monkeypatch.setattr(loader, "_parse", counting_parse)
        monkeypatch.setattr(loader, "_validate_offering", counting_validate)

    def reset(self) -> None:
        self.parsed = self.validated = 0


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> Spy:
    return Spy(monkeypatch)


@pytest.fixture
def two_files(write_catalogue: Write, new_offering: NewOffering) -> Iterator[Path]:
    kdir = write_catalogue([new_offering("printer-toner"), new_offering("printer-repair")],
                           name="print.yaml").parent
    write_catalogue([new_offering("mobile-phone", lifecycle="retired")], name="phones.yaml")
    yield kdir


def _rendered(report: LoadReport) -> list[str]:
    return [p.render() for p in report.problems]


def _sources(catalog: Catalog | None) -> list[tuple[str, str, int]]:
    assert catalog is not None
    return [(o.id, o.source.path, o.source.line) for o in catalog if o.source is not None]


def test_unchanged_files_are_neither_parsed_nor_validated_again(two_files: Path,
                                                                spy: Spy) -> None:
    first = check_knowledge(two_files)
    assert (first.files, first.cached_files) == (2, 0)
    assert (spy.parsed, spy.validated) == (2, 3)
    spy.reset()
    second = check_knowledge(two_files)
    assert (second.files, second.cached_files) == (2, 2)
    assert (spy.parsed, spy.validated) == (0, 0)


def test_two_loads_give_equal_catalogues_sources_and_problems(two_files: Path) -> None:
    first, second = check_knowledge(two_files), check_knowledge(two_files)
    assert second.cached_files == 2
    assert first.catalog == second.catalog
    assert _sources(first.catalog) == _sources(second.catalog)
    # The cross-file warning (retired without a replacement) is found on every load.
    assert _rendered(first) == _rendered(second)
    assert any("retired without `replaced_by`" in line for line in _rendered(second))
    uncached = check_knowledge(two_files, cache=False)
    assert (uncached.catalog, uncached.problems) == (second.catalog, second.problems)


def test_a_changed_file_is_validated_again_and_its_error_located(two_files: Path,
                                                                 spy: Spy) -> None:
    check_knowledge(two_files)
    phones = two_files / "phones.yaml"
    before = phones.stat()
    text = phones.read_text(encoding="utf-8")
    assert "kind: service" in text
    # Same size and modification time: only the content tells the files apart.
    phones.write_text(text.replace("kind: service", "kind: servlce"), encoding="utf-8")
    os.utime(phones, ns=(before.st_atime_ns, before.st_mtime_ns))
    spy.reset()
    report = check_knowledge(two_files)
    assert report.catalog is None
    assert report.cached_files == 1  # print.yaml, unchanged
    assert (spy.parsed, spy.validated) == (1, 1)
    line = text.splitlines().index("  kind: service") + 1
    assert [p.render() for p in report.errors] == [
        f"{phones}:{line}: kind: must be one of `product`, `service`, "
        "not 'servlce' (did you mean `service`?)"]


def test_a_broken_file_is_reported_on_every_load(two_files: Path, spy: Spy) -> None:
    (two_files / "broken.yaml").write_text("id: [unclosed\n", encoding="utf-8")
    first = check_knowledge(two_files)
    spy.reset()
    second = check_knowledge(two_files)
    assert _rendered(first) == _rendered(second)
    assert any(p.path.endswith("broken.yaml") and p.line == 1 for p in second.errors)
    assert (second.cached_files, spy.parsed) == (2, 1)


def test_warnings_of_a_file_are_reported_on_every_load(two_files: Path) -> None:
    (two_files / "empty.yaml").write_text("# nothing yet\n", encoding="utf-8")
    first, second = check_knowledge(two_files), check_knowledge(two_files)
    assert second.cached_files == 2
    assert [p.message for p in second.warnings if p.path.endswith("empty.yaml")] == [
        "file is empty"]
    assert _rendered(first) == _rendered(second)


def test_cross_file_rules_run_on_cached_files(two_files: Path, write_catalogue: Write,
                                              new_offering: NewOffering) -> None:
    check_knowledge(two_files)
    extra = write_catalogue([new_offering("printer-repair")], name="zz-extra.yaml")
    report = check_knowledge(two_files)
    assert report.cached_files == 2
    duplicate = [p for p in report.errors if p.field == "id"]
    assert len(duplicate) == 1
    assert duplicate[0].path == str(extra)
    assert f"also defined at {two_files / 'print.yaml'}:" in duplicate[0].message
    text = (two_files / "print.yaml").read_text(encoding="utf-8").splitlines()
    assert duplicate[0].message.endswith(f":{text.index('- id: printer-repair') + 1}")


def test_a_copied_file_keeps_its_own_path_and_lines(two_files: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "print.yaml").write_bytes((two_files / "print.yaml").read_bytes())
    check_knowledge(two_files)
    report = check_knowledge(other)
    assert {path for _, path, _ in _sources(report.catalog)} == {str(other / "print.yaml")}


def test_a_corrupt_cache_is_ignored_with_one_warning_and_rewritten(
        two_files: Path, cache: Path, spy: Spy, caplog: pytest.LogCaptureFixture) -> None:
    good = check_knowledge(two_files)
    [stored] = cache.glob("knowledge-*.cache")
    stored.write_bytes(stored.read_bytes()[:-10])  # truncated: the digest does not match
    spy.reset()
    with caplog.at_level(logging.WARNING):
        report = check_knowledge(two_files)
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert "ignoring unreadable knowledge cache" in caplog.text
    assert report.catalog == good.catalog and report.cached_files == 0
    assert spy.parsed == 2
    assert check_knowledge(two_files).cached_files == 2  # rewritten


def _cache_file(value: object) -> bytes:
    payload = encode(value, ())
    return MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload


@pytest.mark.parametrize("content", [
    _cache_file(["a", "list"]),
    _cache_file({"version": "another version", "key": "key", "value": {}}),
    pickle.dumps(("v", "key", {})),
    b"",
], ids=["not-a-cache-value", "another-version", "a-pickle", "empty"])
def test_a_foreign_or_stale_cache_is_ignored(two_files: Path, cache: Path, content: bytes,
                                             caplog: pytest.LogCaptureFixture) -> None:
    check_knowledge(two_files)
    [stored] = cache.glob("knowledge-*.cache")
    stored.write_bytes(content)
    with caplog.at_level(logging.WARNING):
        report = check_knowledge(two_files)
    assert len(caplog.records) == 1
    assert report.catalog is not None and report.cached_files == 0


def test_a_new_schema_or_loader_version_makes_the_cache_stale(
        two_files: Path, monkeypatch: pytest.MonkeyPatch, spy: Spy) -> None:
    check_knowledge(two_files)
    monkeypatch.setattr(loader, "_static_cache_version", lambda: "a later loader")
    spy.reset()
    assert check_knowledge(two_files).cached_files == 0
    assert spy.parsed == 2


def test_an_unwritable_cache_directory_costs_only_time(
        two_files: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the cache directory should be", encoding="utf-8")
    monkeypatch.setenv("CONCIERGE_CACHE_DIR", str(blocked))
    with caplog.at_level(logging.WARNING):
        report = check_knowledge(two_files)
    assert report.catalog is not None and len(report.catalog) == 3
    assert "not using the cache folder" in caplog.text


def test_without_the_cache_nothing_is_read_or_written(two_files: Path, cache: Path) -> None:
    assert load_catalog(two_files, cache=False)
    assert not cache.exists()


def test_a_reload_that_finds_an_error_keeps_the_last_good_catalogue(two_files: Path) -> None:
    live = LiveCatalogue(two_files, "lexical", build_matcher(load_catalog(two_files), "lexical"))
    phones = two_files / "phones.yaml"
    phones.write_text(phones.read_text(encoding="utf-8") + "- id: Not A Slug\n",
                      encoding="utf-8")
    result = live.reload()
    assert not result.ok
    assert len(live.catalog) == 3
    assert all(p.path == str(phones) and p.line > 1 for p in result.errors)
    phones.write_text(phones.read_text(encoding="utf-8").replace("- id: Not A Slug\n", ""),
                      encoding="utf-8")
    assert live.reload().ok


def test_the_cache_keeps_only_the_most_recent_files_of_a_kind(tmp_path: Path) -> None:
    disk = DiskCache(tmp_path, "knowledge", "v1", keep=2)
    for key in ("a", "b", "c"):
        disk.write(key, key)
        os.utime(disk.path(key), ns=(0, {"a": 1, "b": 2, "c": 3}[key] * 10**9))
    disk.write("c", "c")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["knowledge-b.cache",
                                                         "knowledge-c.cache"]
    assert (disk.read("b"), disk.read("a")) == ("b", None)


def test_a_problem_is_never_served_from_the_cache(two_files: Path) -> None:
    """Only files without any problem are stored: what is cached cannot hide one."""
    check_knowledge(two_files)
    [stored] = Path(os.environ["CONCIERGE_CACHE_DIR"]).glob("knowledge-*.cache")
    entries = DiskCache(stored.parent, "knowledge", loader._cache_version()).read(
        stored.name.removeprefix("knowledge-").removesuffix(".cache"))
    assert isinstance(entries, dict)
    assert len(entries) == 2
    for offerings in entries.values():
        for data, line, lines in offerings:
            assert isinstance(data, dict) and line >= 1
            assert not [p for p in lines if p and p[0] not in ("id", "includes", "replaced_by",
                                                                "lifecycle")
                        and p[:2] not in (("request", "form"), ("request", "deliver_to"),
                                          ("request", "url"))]


# --- what the cache may make Concierge serve ----------------------------------------------

JAVASCRIPT = "javascript:alert(document.cookie)"


def _poison(cache: Path) -> None:
    """Rewrite the cached files with a `javascript:` request link and an `@channel` summary,
    in a cache file whose format and digest are right: what an attacker able to write the
    folder would leave there."""
    [stored] = cache.glob("knowledge-*.cache")
    key = stored.name.removeprefix("knowledge-").removesuffix(".cache")
    disk = DiskCache(cache, "knowledge", loader._cache_version())
    entries = disk.read(key)
    assert isinstance(entries, dict)
    for offerings in entries.values():
        for data, _, _ in offerings:
            data["request"] = {"url": JAVASCRIPT}
            data["summary"] = "<!channel> urgent"
    stored.write_bytes(_cache_file({"version": loader._cache_version(), "key": key,
                                    "value": entries}))


@pytest.mark.parametrize("mode", [0o777, 0o775, 0o757])
def test_a_cache_folder_others_may_write_is_not_used(two_files: Path, cache: Path, mode: int,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    check_knowledge(two_files)
    _poison(cache)
    cache.chmod(mode)
    with caplog.at_level(logging.WARNING):
        catalog = load_catalog(two_files)
    assert {o.request.url for o in catalog} != {JAVASCRIPT}
    assert all(o.request.url and o.request.url.startswith("https://") for o in catalog)
    assert "others may write to it" in caplog.text


def test_a_cache_folder_of_another_user_is_not_used(two_files: Path, cache: Path) -> None:
    check_knowledge(two_files)
    _poison(cache)
    if os.geteuid() != 0:
        pytest.skip("giving a folder to another user needs root (CI runs as root)")
    os.chown(cache, 65534, 65534)
    catalog = load_catalog(two_files)
    assert all(o.request.url and o.request.url.startswith("https://") for o in catalog)


def test_the_cache_folder_and_files_are_the_owners_alone(two_files: Path, cache: Path) -> None:
    check_knowledge(two_files)
    assert cache.stat().st_mode & 0o777 == 0o700
    assert {p.stat().st_mode & 0o777 for p in cache.iterdir()} == {0o600}


def test_a_pickle_in_the_cache_is_never_run(two_files: Path, cache: Path,
                                            tmp_path: Path) -> None:
    # A pickle that creates a file when loaded, under the names the old and new formats use.
    marker = tmp_path / "pickle-ran"

    class Payload:
        def __reduce__(self) -> tuple[Any, ...]:
            return (Path.touch, (marker,))

    check_knowledge(two_files)
    [stored] = cache.glob("knowledge-*.cache")
    evil = pickle.dumps(Payload())
    stored.write_bytes(evil)
    stored.with_suffix(".pickle").write_bytes(evil)
    report = check_knowledge(two_files)
    assert report.catalog is not None and len(report.catalog) == 3
    assert not marker.exists()
