"""The layering contract covers the whole package: a new module cannot slip past it.

`lint-imports` (run by .ci/run) checks the contracts in pyproject.toml; these tests check
that the contracts name every part of `bot/`, so that a module added to the Slack layer,
or a new layer package, is placed in the order of layers instead of going unchecked.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIG = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
CONTRACTS = CONFIG["tool"]["importlinter"]["contracts"]
LAYERS = next(c for c in CONTRACTS if c["type"] == "layers")["layers"]
IN_LAYERS = {name for layer in LAYERS for name in re.split(r"\s*[:|]\s*", layer.strip())}
TOP_MODULES = {"bot.__init__", "bot.__main__", "bot.settings", "bot.errors", "bot.logs",
               "bot.wording"}
"""Shared by every layer (settings, the error tree, log policy, wording): outside the order."""


def test_every_slack_module_has_its_place_in_the_layers() -> None:
    modules = {f"bot.slack.{p.stem}" for p in (REPO / "bot" / "slack").glob("*.py")
               if p.stem != "__init__"}
    assert modules - IN_LAYERS == set()


def test_every_part_of_bot_is_a_layer_or_shared_by_all() -> None:
    parts = {f"bot.{p.name}" for p in (REPO / "bot").iterdir()
             if p.is_dir() and (p / "__init__.py").exists()}
    parts |= {f"bot.{p.stem}" for p in (REPO / "bot").glob("*.py")}
    covered = {name for name in IN_LAYERS if name.count(".") == 1} | {"bot.slack"}
    assert parts - covered - TOP_MODULES == set()


def test_modules_shared_by_all_never_speak_slack() -> None:
    no_slack = next(c for c in CONTRACTS if c["name"].startswith("Only the Slack layer"))
    shared = {m for m in TOP_MODULES if not m.startswith("bot.__")}
    assert shared <= set(no_slack["source_modules"])
