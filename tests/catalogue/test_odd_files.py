"""What a knowledge path may point to: real FIFOs, devices and symlinks on disk.

Only regular files inside the knowledge directory are read, at most the size limit; any
other path is an error naming the file, and nothing hangs or reads without end. Reading
runs on a thread with a generous join timeout: a liveness guard, not a measurement.
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from conftest import WriteCatalogue

from bot.catalogue.loader import MAX_FILE_BYTES, LoadReport, check_knowledge

GUARD_SECONDS = 60.0


def check_within_guard(kdir: Path) -> LoadReport:
    """`check_knowledge(kdir)`, failing the test if it never returns."""
    done: list[LoadReport] = []
    reader = threading.Thread(target=lambda: done.append(check_knowledge(kdir)), daemon=True)
    reader.start()
    reader.join(GUARD_SECONDS)
    assert done, "the loader never returned"
    return done[0]


def errors_by_file(report: LoadReport) -> dict[str, str]:
    return {Path(p.path).name: p.message for p in report.errors}


def test_a_fifo_named_yaml_is_an_error_not_a_hang(kdir: Path, write_catalogue: WriteCatalogue,
                                                 new_offering: Callable[..., Any]) -> None:
    write_catalogue([new_offering("printer-toner")])
    os.mkfifo(kdir / "pipe.yaml")
    report = check_within_guard(kdir)
    assert report.catalog is None
    assert errors_by_file(report) == {
        "pipe.yaml": "is not a regular file (a named pipe); only plain files are read"}


def test_a_link_to_dev_zero_is_refused_unread(kdir: Path) -> None:
    (kdir / "zero.yaml").symlink_to("/dev/zero")
    report = check_within_guard(kdir)
    assert errors_by_file(report) == {"zero.yaml": "is a link to /dev/zero, outside the "
                                                    "knowledge directory; only files inside "
                                                    "it are read"}


def test_a_device_inside_the_directory_is_refused_unread(kdir: Path) -> None:
    try:
        os.mknod(kdir / "zero.yaml", 0o600 | stat.S_IFCHR, os.makedev(1, 5))  # /dev/zero
    except PermissionError:
        pytest.skip("creating a device node needs root (CI runs as root)")
    report = check_within_guard(kdir)
    assert errors_by_file(report) == {
        "zero.yaml": "is not a regular file (a character device); only plain files are read"}


def test_a_link_to_a_file_outside_is_not_served(tmp_path: Path, kdir: Path,
                                                write_catalogue: WriteCatalogue,
                                                new_offering: Callable[..., Any]) -> None:
    write_catalogue([new_offering("printer-toner")])
    elsewhere = write_catalogue([new_offering("from-elsewhere")], directory=tmp_path / "other")
    (kdir / "borrowed.yaml").symlink_to(elsewhere)
    report = check_within_guard(kdir)
    assert report.catalog is None
    [problem] = report.errors
    assert (problem.path, problem.line, problem.field) == (str(kdir / "borrowed.yaml"), 0,
                                                          "file")
    assert problem.render().startswith(f"{kdir / 'borrowed.yaml'}:0: file: is a link to ")


def test_links_within_the_directory_are_read(kdir: Path, write_catalogue: WriteCatalogue,
                                             new_offering: Callable[..., Any]) -> None:
    # Only the link has a knowledge file's name; what it points to is inside the directory.
    write_catalogue([new_offering("printer-toner")], directory=kdir / "shared",
                    name="printing.txt")
    (kdir / "alias.yaml").symlink_to(Path("shared") / "printing.txt")
    report = check_within_guard(kdir)
    assert report.catalog is not None, [p.render() for p in report.problems]
    assert [o.id for o in report.catalog] == ["printer-toner"]


def test_a_knowledge_directory_that_is_itself_a_link_is_read(
        tmp_path: Path, write_catalogue: WriteCatalogue,
        new_offering: Callable[..., Any]) -> None:
    real = tmp_path / "catalogue-v2"
    write_catalogue([new_offering("printer-toner")], directory=real)
    current = tmp_path / "current"
    current.symlink_to(real, target_is_directory=True)
    report = check_within_guard(current)
    assert report.catalog is not None and len(report.catalog) == 1


def test_a_file_growing_past_the_limit_is_refused_after_limit_plus_one_bytes(
        kdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The size on disk says "small" (st_size 0, as a /proc file or a growing file would):
    # reading still stops one byte past the limit.
    path = kdir / "grows.yaml"
    path.write_bytes(b"#" * (MAX_FILE_BYTES + 100))
    real_fstat = os.fstat

    class Small:
        def __init__(self, info: os.stat_result) -> None:
            self.st_mode, self.st_size = info.st_mode, 0

    monkeypatch.setattr(os, "fstat", lambda fd: Small(real_fstat(fd)))
    report = check_within_guard(kdir)
    messages: Mapping[str, str] = errors_by_file(report)
    assert messages == {"grows.yaml": f"file is {MAX_FILE_BYTES + 1:,} bytes; the limit is "
                                      f"{MAX_FILE_BYTES:,}"}
