"""The `concierge` command, in-process and as a real subprocess."""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from clirun import run
from unprivileged import as_unprivileged, shared_folder

from bot.catalogue.loader import check_knowledge
from bot.cli.main import build_parser, main
from bot.settings import knowledge_dir, repo_root

JSON_KEYS = {"query", "decision", "answer", "confidence", "candidates", "why", "rule"}


@pytest.fixture
def catalogue(kdir: Path, write_catalogue, new_offering) -> Path:
    """Five offerings in two files; returns the knowledge directory."""
    write_catalogue([
        new_offering("password-reset", name="Password reset",
                     summary="Set a new password when you forgot yours.",
                     needs=["I forgot my password"], keywords=["password"]),
        new_offering("wifi-help", name="Wi-Fi help",
                     needs=["my wireless keeps dropping"], keywords=["wifi"]),
    ], name="access.yaml")
    write_catalogue([
        new_offering("mobile-phone", name="Mobile phone", kind="product",
                     needs=["I need a phone for work"], keywords=["smartphone"]),
        new_offering("desk-phone", name="Desk phone", kind="product",
                     needs=["I need a phone for work"], keywords=["handset"]),
        new_offering("fax-machine", name="Fax machine", lifecycle="retired",
                     replaced_by="password-reset", needs=["I need to send a fax"]),
    ], name="phones/phones.yaml")
    return kdir


def json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines()]


def subprocess_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONCIERGE_")}
    env["CONCIERGE_MATCHER"] = "lexical"
    env.update(extra)
    return env


def assert_json_contract(obj: dict[str, object]) -> None:
    assert set(obj) == JSON_KEYS
    assert isinstance(obj["query"], str)
    assert obj["decision"] in ("answer", "clarify", "none", "help")
    assert isinstance(obj["confidence"], (int, float))
    assert 0.0 <= obj["confidence"] <= 1.0
    assert isinstance(obj["why"], str) and obj["why"]
    rule = obj["rule"]
    assert isinstance(rule, dict) and rule["source"] in ("calibrated", "default")
    assert all(isinstance(rule[k], float) for k in ("answer", "margin", "decline"))
    candidates = obj["candidates"]
    assert isinstance(candidates, list) and len(candidates) <= 5
    for c in candidates:
        assert set(c) == {"id", "name", "score"}
        assert isinstance(c["id"], str) and isinstance(c["name"], str)
        assert isinstance(c["score"], (int, float))
    scores = [c["score"] for c in candidates]
    assert scores == sorted(scores, reverse=True)
    if obj["decision"] == "answer":
        assert obj["answer"] == candidates[0]["id"]
    else:
        assert obj["answer"] is None


# --- ask ---------------------------------------------------------------------------------


@pytest.mark.parametrize("greeting", ["help", "Hi", "?"])
def test_ask_help_says_how_to_ask_as_slack_does(catalogue: Path, greeting: str) -> None:
    code, out = run("ask", "--knowledge", str(catalogue), greeting)
    assert code == 0
    assert "I don't know" not in out
    assert out.startswith(f"? {greeting}\nTell me what you need in plain words")
    code, out = run("ask", "--json", "--knowledge", str(catalogue), greeting)
    [answer] = json_lines(out)
    assert_json_contract(answer)
    assert (answer["decision"], answer["answer"], answer["candidates"]) == ("help", None, [])


def test_ask_promises_nothing_it_does_not_do(catalogue: Path) -> None:
    # The command line records nothing, so it cannot "note that the catalogue is missing this".
    code, out = run("ask", "--knowledge", str(catalogue), "how do I bake sourdough bread")
    assert code == 0 and "I don't know an offering for that." in out
    assert "Ask the IT service desk." in out and "note" not in out


def test_ask_json_contract(catalogue: Path) -> None:
    questions = ["I forgot my password", "I need a phone", "book a restaurant"]
    code, out = run("ask", "--json", "--knowledge", str(catalogue), *questions)
    assert code == 0
    objs = json_lines(out)
    assert [o["query"] for o in objs] == questions
    for obj in objs:
        assert_json_contract(obj)
    assert [o["decision"] for o in objs] == ["answer", "clarify", "none"]
    assert objs[0]["answer"] == "password-reset"
    assert "I forgot my password" in objs[0]["why"]
    assert {c["id"] for c in objs[1]["candidates"][:2]} == {"mobile-phone", "desk-phone"}


def test_ask_json_keeps_non_ascii(catalogue: Path) -> None:
    code, out = run("ask", "--json", "--knowledge", str(catalogue), "Passwort für WLAN")
    assert code == 0
    assert "für" in out
    assert json_lines(out)[0]["query"] == "Passwort für WLAN"


def test_ask_text_output(catalogue: Path) -> None:
    code, out = run("ask", "--knowledge", str(catalogue), "I forgot my password",
                     "book a restaurant")
    assert code == 0
    assert "? I forgot my password" in out
    assert "Password reset  [service]" in out
    assert "Owner: Test Team (#it-test)" in out
    assert "Request: https://it.example.test/request/password-reset" in out
    assert "Why: Matched need \"I forgot my password\"" in out
    assert "? book a restaurant" in out
    assert "I don't know an offering for that." in out


def test_ask_text_retired_answer_names_the_replacement(catalogue: Path) -> None:
    code, out = run("ask", "--knowledge", str(catalogue), "I need to send a fax")
    assert code == 0
    assert "(Fax machine is retired; this replaces it.)" in out


def test_ask_batch_from_stdin_preserves_order(catalogue: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    lines = ["book a restaurant", "I forgot my password", "", "I need a phone", "wifi"]
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(lines) + "\r\n"))
    code, out = run("ask", "--json", "--knowledge", str(catalogue))
    assert code == 0
    objs = json_lines(out)
    assert [o["query"] for o in objs] == lines
    assert objs[2]["decision"] == "none"
    assert objs[2]["candidates"] == []
    assert [o["decision"] for o in objs] == ["none", "answer", "none", "clarify", "answer"]
    for obj in objs:
        assert_json_contract(obj)


# --- check -------------------------------------------------------------------------------


def test_check_ok(catalogue: Path) -> None:
    code, out = run("check", "--knowledge", str(catalogue))
    assert code == 0
    verdict, rule = out.splitlines()
    assert verdict == "ok: 5 offerings in 2 files"
    # Four live offerings with four needs: too few to learn decision lines from, and said so.
    assert rule.startswith("note: decision rule: default. 4 live offerings with 4 needs are "
                           "too few")


def test_check_errors_and_warnings(catalogue: Path, write_text) -> None:
    bad = write_text("bad.yaml", "id: bad\nname: Bad\nsummary: s\nkind: prodcut\n"
                                 "owner: {team: T}\nrequest: {steps: ask}\nneeds: [n]\n")
    empty = write_text("empty.yaml", "")
    code, out = run("check", "--knowledge", str(catalogue))
    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith(f"{bad}:4: kind: must be one of `product`, `service`")
    assert lines[1] == f"{empty}:1: file: warning: file is empty"
    assert lines[-1] == "1 error, 1 warning in 4 files"


def test_check_warnings_only_exit_zero(catalogue: Path, write_text) -> None:
    empty = write_text("empty.yaml", "")
    code, out = run("check", "--knowledge", str(catalogue))
    assert code == 0
    assert out.splitlines()[:2] == [f"{empty}:1: file: warning: file is empty",
                                    "ok: 5 offerings in 3 files, 1 warning"]


# --- eval --------------------------------------------------------------------------------


def test_eval_all_pass_exits_zero(catalogue: Path, tmp_path: Path) -> None:
    cases = tmp_path / "cases.yaml"
    cases.write_text("- q: I forgot my password\n  expect: [password-reset]\n"
                     "- q: book a restaurant\n  expect: []\n", encoding="utf-8")
    code, out = run("eval", "--cases", str(cases), "--knowledge", str(catalogue))
    assert code == 0
    assert "matcher: lexical; 2 questions (1 in scope, 1 out of scope)" in out
    assert "direct hit" in out and "100.0%" in out
    assert "MISS" not in out


def test_eval_failure_exits_one_with_miss_lines(catalogue: Path, tmp_path: Path) -> None:
    cases = tmp_path / "cases.yaml"
    cases.write_text("- q: I forgot my password\n  expect: [password-reset]\n"
                     "- q: my wireless keeps dropping\n  expect: [mobile-phone]\n"
                     "- q: I forgot my password again\n  expect: []\n", encoding="utf-8")
    code, out = run("eval", "--cases", str(cases), "--knowledge", str(catalogue))
    assert code == 1
    misses = [ln for ln in out.splitlines() if ln.startswith("MISS")]
    assert misses == [
        f"MISS {cases}:3: 'my wireless keeps dropping': expected mobile-phone, "
        "got answer wifi-help",
        f"MISS {cases}:5: 'I forgot my password again': expected (decline), "
        "got answer password-reset",
    ]


def test_eval_known_miss_is_reported_but_does_not_fail(catalogue: Path, tmp_path: Path) -> None:
    cases = tmp_path / "cases.yaml"
    cases.write_text("- q: I forgot my password\n  expect: [password-reset]\n"
                     "- q: my wireless keeps dropping\n  expect: [mobile-phone]\n"
                     "  known_miss: wireless is read as wi-fi\n", encoding="utf-8")
    code, out = run("eval", "--cases", str(cases), "--knowledge", str(catalogue))
    assert code == 0
    assert (f"KNOWN MISS {cases}:3: 'my wireless keeps dropping': expected mobile-phone, "
            "got answer wifi-help") in out.splitlines()
    assert not [ln for ln in out.splitlines() if ln.startswith("MISS")]


def test_eval_known_miss_that_passes_fails_the_run(catalogue: Path, tmp_path: Path) -> None:
    cases = tmp_path / "cases.yaml"
    cases.write_text("- q: I forgot my password\n  expect: [password-reset]\n"
                     "  known_miss: was broken once\n", encoding="utf-8")
    code, out = run("eval", "--cases", str(cases), "--knowledge", str(catalogue))
    assert code == 1
    assert (f"FIXED {cases}:1: 'I forgot my password': passes now; remove its known_miss"
            in out.splitlines())


def test_eval_known_miss_needs_a_reason(catalogue: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    cases = tmp_path / "cases.yaml"
    cases.write_text("- q: hi\n  expect: []\n  known_miss: ''\n", encoding="utf-8")
    code, _ = run("eval", "--cases", str(cases), "--knowledge", str(catalogue))
    assert code == 2
    assert f"{cases}:1: known_miss: must be a reason (text)" in capsys.readouterr().err


def test_eval_json(catalogue: Path, tmp_path: Path) -> None:
    cases = tmp_path / "cases.yaml"
    cases.write_text("- q: I forgot my password\n  expect: [password-reset]\n",
                     encoding="utf-8")
    code, out = run("eval", "--json", "--cases", str(cases), "--knowledge", str(catalogue))
    assert code == 0
    metrics = json.loads(out)
    assert metrics["matcher"] == "lexical"
    assert metrics["questions"] == 1
    assert metrics["direct"] == 1.0


def test_eval_unknown_expect_id_is_a_usage_error(catalogue: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    cases = tmp_path / "cases.yaml"
    cases.write_text("- q: hi\n  expect: [no-such-thing]\n", encoding="utf-8")
    code, _ = run("eval", "--cases", str(cases), "--knowledge", str(catalogue))
    assert code == 2
    assert f"{cases}:1: expect: unknown offering id 'no-such-thing'" in capsys.readouterr().err


# --- knowledge resolution and configuration ----------------------------------------------


@pytest.fixture
def two_catalogues(tmp_path: Path, write_catalogue, new_offering) -> tuple[Path, Path]:
    flag_dir, env_dir = tmp_path / "from-flag", tmp_path / "from-env"
    write_catalogue([new_offering("only-one")], directory=flag_dir)
    write_catalogue([new_offering("first"), new_offering("second")], directory=env_dir)
    return flag_dir, env_dir


def test_flag_beats_environment(two_catalogues: tuple[Path, Path],
                                monkeypatch: pytest.MonkeyPatch) -> None:
    flag_dir, env_dir = two_catalogues
    monkeypatch.setenv("CONCIERGE_KNOWLEDGE", str(env_dir))
    code, out = run("check", "--knowledge", str(flag_dir))
    assert (code, out.splitlines()[0]) == (0, "ok: 1 offering in 1 file")


def test_environment_beats_default(two_catalogues: tuple[Path, Path],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    _, env_dir = two_catalogues
    monkeypatch.setenv("CONCIERGE_KNOWLEDGE", str(env_dir))
    code, out = run("check")
    assert (code, out.splitlines()[0]) == (0, "ok: 2 offerings in 1 file")
    assert knowledge_dir() == env_dir


def test_default_is_the_checkout_catalogue(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONCIERGE_KNOWLEDGE", "   ")  # blank counts as unset
    default = repo_root() / "knowledge"
    assert knowledge_dir() == default
    assert knowledge_dir(None) == default
    assert run("check") == run("check", "--knowledge", str(default))


@pytest.mark.parametrize("command", [["ask", "hello"], ["check"],
                                     ["eval", "--cases", "cases.yaml"]])
def test_missing_knowledge_directory_is_a_usage_error(
        tmp_path: Path, command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "no-such-dir"
    code, out = run(*command, "--knowledge", str(missing))
    err = capsys.readouterr().err
    assert f"{missing}:0: knowledge: the knowledge directory does not exist" in err + out
    assert code == 2


def test_bad_matcher_setting_is_a_usage_error(catalogue: Path,
                                              monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CONCIERGE_MATCHER", "psychic")
    code, out = run("ask", "--knowledge", str(catalogue), "hello")
    assert code == 2
    assert out == ""
    assert "CONCIERGE_MATCHER" in capsys.readouterr().err


def test_invalid_knowledge_makes_ask_fail_with_every_problem(
        catalogue: Path, write_text, capsys: pytest.CaptureFixture[str]) -> None:
    bad = write_text("bad.yaml", "id: Bad Id\n")
    code, out = run("ask", "--knowledge", str(catalogue), "I forgot my password")
    assert code == 2
    assert out == ""
    err = capsys.readouterr().err
    assert f"{bad}:1: id: 'Bad Id' is not a valid id" in err
    assert "concierge: the knowledge directory has errors" in err


# --- help --------------------------------------------------------------------------------


def _subcommands() -> dict[str, tuple[argparse.ArgumentParser, str | None]]:
    parser = build_parser()
    [action] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    helps = {a.dest: a.help for a in action._choices_actions}
    return {name: (sub, helps.get(name)) for name, sub in action.choices.items()}


def test_there_are_subcommands() -> None:
    assert {"ask", "check", "eval"} <= set(_subcommands())


@pytest.mark.parametrize("name", sorted(_subcommands()))
def test_every_subcommand_has_help(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    sub, summary = _subcommands()[name]
    assert summary and summary.strip(), f"`concierge {name}` has no help= in the command list"
    assert sub.description and sub.description.strip()
    for action in sub._actions:
        if not isinstance(action, argparse._HelpAction):
            assert action.help and action.help.strip(), f"{name} {action.dest} has no help"
    with pytest.raises(SystemExit) as exited:
        main([name, "--help"])
    assert exited.value.code == 0
    assert f"usage: concierge {name}" in capsys.readouterr().out


def test_top_level_help_lists_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for name, (_, summary) in _subcommands().items():
        assert name in out
        assert summary is not None and summary in out


def test_no_subcommand_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([])
    assert exited.value.code == 2
    assert "usage:" in capsys.readouterr().err


# --- as a real process, from another folder ----------------------------------------------


def test_subprocess_ask_json_from_any_folder(catalogue: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "ask", "--json", "--knowledge", str(catalogue),
         "I forgot my pasword"],
        cwd=elsewhere, env=subprocess_env(), capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    [obj] = json_lines(proc.stdout)
    assert_json_contract(obj)
    assert obj["answer"] == "password-reset"


def test_subprocess_batch_stdin_with_environment_knowledge(catalogue: Path,
                                                           tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "ask", "--json"],
        input="I forgot my password\n\nI need a phone\n", cwd=tmp_path,
        env=subprocess_env(CONCIERGE_KNOWLEDGE=str(catalogue)),
        capture_output=True, text=True, encoding="utf-8", check=False)
    assert proc.returncode == 0, proc.stderr
    objs = json_lines(proc.stdout)
    assert [o["query"] for o in objs] == ["I forgot my password", "", "I need a phone"]
    assert [o["decision"] for o in objs] == ["answer", "none", "clarify"]


def test_subprocess_check_reports_errors_and_exits_one(catalogue: Path, tmp_path: Path,
                                                       write_text) -> None:
    bad = write_text("bad.yaml", "id: x\nname: X\nsummary: s\nkind: service\n"
                                 "owner: {team: T}\nrequest: {url: http://x.example}\n"
                                 "needs: [n]\n")
    proc = subprocess.run([sys.executable, "-m", "bot", "check", "--knowledge", str(catalogue)],
                          cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 1
    assert f"{bad}:6: request.url: must be an https:// link" in proc.stdout
    assert proc.stdout.splitlines()[-1] == "1 error, 0 warnings in 3 files"


def test_subprocess_missing_knowledge_exits_two(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "bot", "ask", "hello"], cwd=tmp_path,
                          env=subprocess_env(CONCIERGE_KNOWLEDGE=str(tmp_path / "gone")),
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert "does not exist" in proc.stderr
    assert proc.stdout == ""


def test_default_check_matches_loader() -> None:
    """The default catalogue is read by the CLI exactly as `check_knowledge` reads it."""
    report = check_knowledge(repo_root() / "knowledge")
    code, out = run("check")
    assert code == (0 if report.catalog is not None else 1)
    assert out.splitlines()[: len(report.problems)] == [p.render() for p in report.problems]


def test_subprocess_check_of_a_fifo_reports_it_and_exits_one(catalogue: Path,
                                                            tmp_path: Path) -> None:
    os.mkfifo(catalogue / "pipe.yaml")
    # The timeout is a liveness guard: reading a FIFO waits for a writer that never comes.
    result = subprocess.run([sys.executable, "-m", "bot", "check", "--knowledge",
                             str(catalogue)], capture_output=True, text=True, timeout=120,
                            env=subprocess_env(), cwd=tmp_path, check=False)
    assert result.returncode == 1
    assert f"{catalogue / 'pipe.yaml'}:0: file: is not a regular file (a named pipe)" in (
        result.stdout)


def _check_exit(kdir: Path) -> list[object]:
    out = io.StringIO()
    code = main(["check", "--knowledge", str(kdir)], out=out)
    return [code, out.getvalue()]


def test_check_of_an_unreadable_directory_fails_with_one(catalogue: Path) -> None:
    # Exit 1 (the check failed), as for any error found; 2 is for bad usage (no such
    # directory), and "no *.yaml files found" would be untrue.
    _check_exit(catalogue)  # imports what a check imports, while they can be read
    with shared_folder("concierge-check-") as parent:
        kdir = parent / "knowledge"
        kdir.mkdir()
        kdir.chmod(0)
        code, out = as_unprivileged(lambda: _check_exit(kdir))
    assert code == 1
    assert out.splitlines() == [f"{kdir}:0: directory: cannot read directory: Permission denied",
                                "1 error, 0 warnings in 0 files"]
