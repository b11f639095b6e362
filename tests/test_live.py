"""A running worker's catalogue under a changing knowledge directory (real files on disk).

Whatever happens to the directory between two reloads (files vanish, appear broken, the
directory empties or disappears), the last good catalogue keeps serving and the problem is
reported; a good directory again is picked up with what changed.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from unprivileged import as_unprivileged, shared_folder

from bot.catalogue.loader import load_catalog
from bot.catalogue.models import DecisionKind
from bot.live import LiveCatalogue, ReloadResult, fingerprint
from bot.matching.engine import build_matcher

NEED = "I need the printer toner"


Write = Callable[..., Path]
NewOffering = Callable[..., dict[str, Any]]


@pytest.fixture
def write(write_catalogue: Write, new_offering: NewOffering) -> Callable[..., Path]:
    """`write("name.yaml", "id", ...)`: a knowledge file of minimal offerings."""

    def write_ids(name: str, *ids: str) -> Path:
        return write_catalogue([new_offering(i) for i in ids], name=name)

    return write_ids


@pytest.fixture
def live(kdir: Path, write: Write) -> LiveCatalogue:
    write("print.yaml", "printer-toner", "printer-repair")
    write("phones.yaml", "mobile-phone")
    return LiveCatalogue(kdir, "lexical", build_matcher(load_catalog(kdir), "lexical"))


def _serves_last_good(live: LiveCatalogue) -> None:
    assert sorted(o.id for o in live.catalog) == ["mobile-phone", "printer-repair",
                                                 "printer-toner"]
    decision = live.matcher.decide(NEED)
    assert decision.kind is DecisionKind.ANSWER
    assert decision.offering is not None and decision.offering.id == "printer-toner"


def test_an_emptied_directory_keeps_the_last_good_catalogue(live: LiveCatalogue,
                                                            kdir: Path) -> None:
    for path in kdir.glob("*.yaml"):
        path.unlink()
    result = live.reload()
    assert not result.ok
    assert [p.message for p in result.errors] == ["no *.yaml or *.yml files found"]
    _serves_last_good(live)


def test_a_vanished_directory_keeps_the_last_good_catalogue(live: LiveCatalogue,
                                                            kdir: Path) -> None:
    shutil.rmtree(kdir)
    result = live.reload()
    assert not result.ok
    assert "does not exist" in result.errors[0].message
    _serves_last_good(live)


def test_a_file_gone_between_listing_and_reading_is_reported(live: LiveCatalogue,
                                                             kdir: Path) -> None:
    # A dangling link is listed like a file and fails to read like one deleted mid-reload
    # (tests may run as root, where permission bits cannot make a file unreadable).
    (kdir / "gone.yaml").symlink_to(kdir / "nowhere.yaml")
    result = live.reload()
    assert not result.ok
    [error] = result.errors
    assert error.path == str(kdir / "gone.yaml") and "cannot read" in error.message
    _serves_last_good(live)


def test_a_broken_file_appearing_is_reported_with_its_line(live: LiveCatalogue,
                                                           kdir: Path) -> None:
    (kdir / "new.yaml").write_text("offerings:\n  - id: car\n    name: [unclosed\n",
                                   encoding="utf-8")
    result = live.reload()
    assert not result.ok
    [error] = result.errors
    assert error.path == str(kdir / "new.yaml") and error.line >= 3
    _serves_last_good(live)


def test_after_a_failed_reload_a_good_directory_is_picked_up_with_its_changes(
        live: LiveCatalogue, kdir: Path, write: Write) -> None:
    (kdir / "phones.yaml").unlink()
    (kdir / "broken.yml").write_text("id: [", encoding="utf-8")
    assert not live.reload().ok
    (kdir / "broken.yml").unlink()
    write("cars.yaml", "company-car")
    result = live.reload()
    assert result.ok and result.diff is not None
    assert (result.diff.added, result.diff.removed) == (("company-car",), ("mobile-phone",))
    assert sorted(o.id for o in live.catalog) == ["company-car", "printer-repair",
                                                 "printer-toner"]


def test_polling_notices_edits_and_reports_a_broken_file_once(
        live: LiveCatalogue, write: Write, write_catalogue: Write,
        new_offering: NewOffering) -> None:
    assert live.poll() is None  # nothing changed
    broken = new_offering("desk-phone", ownr="Telephony")  # a misspelt field: an error
    write_catalogue([new_offering("mobile-phone"), broken], name="phones.yaml")
    first = live.poll()
    assert first is not None and not first.ok
    assert [p.field for p in first.errors] == ["ownr"]
    assert live.poll() is None  # the same broken state is not re-read on every poll
    _serves_last_good(live)
    write("phones.yaml", "mobile-phone", "desk-phone")
    fixed = live.poll()
    assert fixed is not None and fixed.ok
    assert "desk-phone" in {o.id for o in live.catalog}


def test_a_yaml_file_with_an_upper_case_suffix_is_watched_too(live: LiveCatalogue,
                                                             write: Write) -> None:
    write("EXTRA.YAML", "company-car")
    result = live.poll()
    assert result is not None and result.ok
    assert "company-car" in {o.id for o in live.catalog}


def test_a_fifo_neither_hangs_the_poller_nor_blocks_later_edits(live: LiveCatalogue,
                                                                kdir: Path,
                                                                write: Write) -> None:
    os.mkfifo(kdir / "stuck.yaml")
    polled: list[ReloadResult | None] = []
    poller = threading.Thread(target=lambda: polled.append(live.poll()), daemon=True)
    poller.start()
    poller.join(60)  # a liveness guard: opening a FIFO to read blocks until a writer comes
    assert polled, "the reload poller hung on a FIFO"
    result = polled[0]
    assert result is not None and not result.ok
    assert [p.message for p in result.errors] == [
        "is not a regular file (a named pipe); only plain files are read"]
    _serves_last_good(live)
    (kdir / "stuck.yaml").unlink()
    write("cars.yaml", "company-car")  # the next edit loads
    result = live.poll()
    assert result is not None and result.ok
    assert "company-car" in {o.id for o in live.catalog}


def _reload_seen(live: LiveCatalogue) -> dict[str, Any]:
    result = live.reload()
    return {"ok": result.ok, "errors": [(p.path, p.message) for p in result.errors],
            "ids": sorted(o.id for o in live.catalog),
            "answer": live.matcher.decide(NEED).kind.value}


def test_a_file_unreadable_by_permission_is_reported(write_catalogue: Write,
                                                      new_offering: NewOffering) -> None:
    with shared_folder("concierge-perm-") as kdir:
        write_catalogue([new_offering("printer-toner"), new_offering("printer-repair")],
                        name="print.yaml", directory=kdir)
        write_catalogue([new_offering("mobile-phone")], name="phones.yaml", directory=kdir)
        for path in kdir.iterdir():
            path.chmod(0o644)
        live = LiveCatalogue(kdir, "lexical", build_matcher(load_catalog(kdir), "lexical"))
        (kdir / "phones.yaml").chmod(0)
        seen = as_unprivileged(lambda: _reload_seen(live))
        assert not seen["ok"]
        [(path, message)] = seen["errors"]
        assert path == str(kdir / "phones.yaml")
        assert message.startswith("cannot read file") and "ermission denied" in message
        assert seen["ids"] == ["mobile-phone", "printer-repair", "printer-toner"]
        assert seen["answer"] == DecisionKind.ANSWER.value


def test_a_reload_that_finds_the_same_catalogue_keeps_the_matcher(
        live: LiveCatalogue, kdir: Path) -> None:
    """Under gunicorn the matcher was built before the fork and is shared by the workers; a
    rebuilt one would be each worker's own copy."""
    kept = live.matcher
    path = kdir / "print.yaml"
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    result = live.poll()
    assert result is not None and result.ok and result.diff is not None
    assert result.diff.is_empty
    assert live.matcher is kept


def test_a_changed_catalogue_is_handed_over_to_be_built_elsewhere(kdir: Path,
                                                                  write: Write) -> None:
    """Under gunicorn the master builds it and forks new workers: this one keeps answering
    with what it has until it is replaced, and never holds a copy of its own."""
    write("print.yaml", "printer-toner")
    handed: list[str] = []
    live = LiveCatalogue(kdir, "lexical", build_matcher(load_catalog(kdir), "lexical"),
                         handover=lambda: handed.append("build it"))
    kept = live.matcher
    write("print.yaml", "printer-toner", "printer-repair")
    result = live.poll()
    assert result is not None and result.diff is not None
    assert result.diff.added == ("printer-repair",)
    assert handed == ["build it"]
    assert live.matcher is kept
    assert live.poll() is None  # the same edit is handed over once


def test_an_edit_made_after_the_matcher_was_built_is_reloaded(kdir: Path,
                                                              write: Write) -> None:
    """A matcher built in gunicorn's master before an edit, handed to a worker after it."""
    write("print.yaml", "printer-toner")
    before_edit = fingerprint(kdir)
    matcher = build_matcher(load_catalog(kdir), "lexical")
    write("print.yaml", "printer-toner", "printer-repair")
    live = LiveCatalogue(kdir, "lexical", matcher, loaded_from=before_edit)
    result = live.poll()
    assert result is not None and result.diff is not None
    assert result.diff.added == ("printer-repair",)
