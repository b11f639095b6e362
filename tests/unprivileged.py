"""Running a piece of a test as an unprivileged user, for permission checks that root
(as CI runs) would pass whatever the permission bits say."""

from __future__ import annotations

import json
import os
import select
import shutil
import tempfile
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

NOBODY = 65534


def as_unprivileged(work: Callable[[], Any], *, uid: int = NOBODY) -> Any:
    """`work()`, run as `uid` when this process is root (else as it is), and its result,
    which must be JSON-serialisable.

    A forked child drops to the user first; a fork, because this interpreter itself may
    live where that user cannot reach it. Everything `work` needs is imported already."""
    if os.geteuid() != 0:
        return json.loads(json.dumps(work()))
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, and never return into pytest
        status = 1
        try:
            os.close(reader)
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            os.write(writer, json.dumps({"result": work()}).encode())
            status = 0
        except BaseException:
            os.write(writer, json.dumps({"error": traceback.format_exc()}).encode())
        finally:
            os._exit(status)
    os.close(writer)
    try:
        ready, _, _ = select.select([reader], [], [], 120)
        assert ready, "the unprivileged run did not finish"
        with os.fdopen(reader, "rb") as pipe:
            data = pipe.read()
    finally:
        _, status = os.waitpid(pid, 0)
    outcome = json.loads(data or b"{}")
    assert os.waitstatus_to_exitcode(status) == 0, (
        f"the unprivileged run failed:\n{outcome.get('error', '(no report)')}")
    return outcome["result"]


@contextmanager
def shared_folder(prefix: str) -> Iterator[Path]:
    """A new folder every user can enter (pytest's own temporary folders are private to
    root), removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        folder.chmod(0o755)
        yield folder
    finally:
        for path in folder.rglob("*"):
            if path.is_dir() and not path.is_symlink():
                path.chmod(0o755)
        shutil.rmtree(folder)
