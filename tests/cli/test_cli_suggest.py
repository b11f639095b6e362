"""`concierge suggest` on a seeded database (SQLite and PostgreSQL): the list, --json,
--patch that `git apply` takes, --owner, and bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from clirun import run
from dbfixtures import db_url, no_database_env, postgres_url, sqlite_url
from seeding import seed_learning, write_learning_catalogue

from bot.catalogue.loader import load_catalog
from bot.matching.engine import build_matcher
from bot.store.database import Store

__all__ = ["db_url", "no_database_env", "postgres_url", "sqlite_url"]


@pytest.fixture
def knowledge(db_url: str, monkeypatch: pytest.MonkeyPatch, no_database_env: None,
              tmp_path: Path) -> Path:
    monkeypatch.setenv("DATABASE_URL", db_url)
    kdir = write_learning_catalogue(tmp_path / "knowledge")
    store = Store(db_url)
    seed_learning(store, build_matcher(load_catalog(kdir), "lexical"))
    store.close()
    return kdir


def test_the_list_names_offerings_evidence_and_snippets(knowledge: Path) -> None:
    code, out = run("suggest", "--knowledge", str(knowledge))
    assert code == 0
    assert out.startswith("Concierge suggested needs, last 30 days")
    assert "Laptop repair [laptop-repair]" in out
    assert "5 × “my laptop screen is cracked” (picked after “Did you mean…” 5; 5 people" in out
    assert "knowledge/devices.yaml: offering `laptop-repair`, replace line 21" in out
    # The snippet is printed as it is to be pasted, not indented like report lines.
    assert "\n      - cannot open the wiki from home\n" in out


def test_json_and_owner(knowledge: Path) -> None:
    code, out = run("suggest", "--json", "--owner", "NETWORK TEAM", "--knowledge",
                    str(knowledge))
    assert code == 0
    data = json.loads(out)
    assert data["report"] == "suggest"
    [vpn] = data["offerings"]
    assert vpn["id"] == "vpn" and vpn["owner"] == "Network Team"
    [item] = vpn["suggestions"]
    assert item["phrase"] == "cannot open the wiki from home"
    assert item["evidence"] == {"rephrased": 1}
    assert item["today"] == {"decision": "none", "offerings": []}
    assert item["with_it"] == {"decision": "answer", "offerings": ["vpn"]}


def test_patch_is_a_diff_git_applies(knowledge: Path, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # labels are relative to here: knowledge/…
    code, patch = run("suggest", "--patch", "--knowledge", str(knowledge))
    assert code == 0 and patch.startswith("--- a/knowledge/devices.yaml\n")
    if shutil.which("git") is None:
        pytest.skip("no git")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["git", "apply", "--check", "-"], cwd=tmp_path, input=patch, text=True,
                   check=True)
    subprocess.run(["git", "apply", "-"], cwd=tmp_path, input=patch, text=True, check=True)
    code, out = run("check", "--knowledge", str(knowledge))
    assert code == 0 and out.startswith("ok: 5 offerings")
    code, out = run("suggest", "--knowledge", str(knowledge))
    assert "No suggestions" not in out  # shared-drive's still clarifies: it stays listed
    assert "cannot open the wiki from home" not in out  # now answered outright


def test_an_unknown_owner_lists_the_teams(knowledge: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run("suggest", "--owner", "networking", "--knowledge", str(knowledge))
    assert code == 2
    err = capsys.readouterr().err
    assert "no owner team 'networking' (did you mean 'Network Team'?)" in err
    assert "Collaboration, Network Team, Workplace Services" in err


def test_json_and_patch_exclude_each_other(knowledge: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        run("suggest", "--json", "--patch")
    assert exit_.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
