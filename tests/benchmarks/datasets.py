"""Intent data sets as Concierge catalogues: one offering per intent, K examples as needs.

CLINC150 (CC BY 3.0) and BANKING77 (CC BY 4.0) live in `../shared/benchmarks/`.
Questions of the evaluation split become golden cases; out-of-scope ones expect `[]`.
"""

from __future__ import annotations

import csv
import json
import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bot.catalogue.models import Catalog, Kind, Offering, Owner, RequestInfo
from bot.matching.evaluate import Case

SHARED = Path(os.environ.get("CONCIERGE_SHARED", Path(__file__).resolve().parents[3] / "shared"))
BENCHMARKS = SHARED / "benchmarks"


@dataclass(frozen=True)
class IntentData:
    name: str
    train: Sequence[tuple[str, str]]
    evaluation: Sequence[tuple[str, str]]  # intent "oos" = out of scope


def clinc150(split: str = "test", root: Path = BENCHMARKS) -> IntentData:
    """`split` is `val` (for choosing thresholds) or `test` (for reporting); `root` holds
    `clinc150/data_full.json`."""
    data = json.loads((root / "clinc150" / "data_full.json").read_text(encoding="utf-8"))
    evaluation = [tuple(x) for x in data[split]] + [tuple(x) for x in data[f"oos_{split}"]]
    return IntentData(f"clinc150-{split}", [tuple(x) for x in data["train"]], evaluation)  # type: ignore[misc]


def clinc150_domains(root: Path = BENCHMARKS) -> dict[str, list[str]]:
    """`clinc150/domains.json`: each CLINC150 domain's intents."""
    table: dict[str, list[str]] = json.loads(
        (root / "clinc150" / "domains.json").read_text(encoding="utf-8"))
    return table


def subset(items: Sequence[Any], limit: int | None) -> list[Any]:
    """Evenly spaced `limit` items (so in- and out-of-scope questions both stay), or all."""
    if limit is None or limit >= len(items):
        return list(items)
    return [items[i * len(items) // limit] for i in range(limit)]


def banking77(root: Path = BENCHMARKS) -> IntentData:
    """`root` holds `banking77/train.csv` and `banking77/test.csv` (columns text, category)."""
    def read(name: str) -> list[tuple[str, str]]:
        with (root / "banking77" / name).open(newline="", encoding="utf-8") as fh:
            return [(row["text"], row["category"]) for row in csv.DictReader(fh)]
    return IntentData("banking77-test", read("train.csv"), read("test.csv"))


def write_banking77(root: Path, train: Sequence[tuple[str, str]],
                    test: Sequence[tuple[str, str]]) -> None:
    """Writes (text, intent) rows where `banking77(root)` reads them (the tests' small
    stand-ins for the real files)."""
    (root / "banking77").mkdir(parents=True, exist_ok=True)
    for name, rows in (("train.csv", train), ("test.csv", test)):
        with (root / "banking77" / name).open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["text", "category"])
            writer.writerows(rows)


def humanise(intent: str) -> str:
    return intent.replace("_", " ").strip().capitalize()


def slug(intent: str) -> str:
    return intent.lower().replace("_", "-").replace(" ", "-")


def to_catalog(data: IntentData, shots: int) -> Catalog:
    """One offering per intent, the first `shots` training examples as its needs."""
    examples: dict[str, list[str]] = defaultdict(list)
    for text, intent in data.train:
        if intent != "oos" and len(examples[intent]) < shots:
            examples[intent].append(text)
    offerings = tuple(
        Offering(id=slug(intent), name=humanise(intent), summary=humanise(intent),
                 kind=Kind.SERVICE, owner=Owner(team="Benchmark"),
                 request=RequestInfo(url="https://example.org/request"), needs=tuple(needs))
        for intent, needs in examples.items()
    )
    return Catalog(offerings)


def to_cases(data: IntentData) -> list[Case]:
    return [Case(text, frozenset() if intent == "oos" else frozenset({slug(intent)}))
            for text, intent in data.evaluation]


def write_yaml(catalog: Catalog, cases: Sequence[Case], folder: Path) -> tuple[Path, Path]:
    """Write the catalogue and cases as files, to run the real `concierge eval` on them."""
    knowledge = folder / "knowledge"
    knowledge.mkdir(parents=True, exist_ok=True)
    offerings = [{"id": o.id, "name": o.name, "summary": o.summary, "kind": o.kind.value,
                  "owner": {"team": o.owner.team}, "request": {"url": o.request.url},
                  "needs": list(o.needs)} for o in catalog]
    (knowledge / "offerings.yaml").write_text(
        yaml.safe_dump({"offerings": offerings}, allow_unicode=True, sort_keys=False))
    cases_path = folder / "cases.yaml"
    cases_path.write_text(yaml.safe_dump(
        [{"q": c.question, "expect": sorted(c.expect)} for c in cases],
        allow_unicode=True, sort_keys=False))
    return knowledge, cases_path
