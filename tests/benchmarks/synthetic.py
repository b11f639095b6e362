"""Synthetic IT catalogues of any size, and questions derived from them, reproducibly.

`write_catalogue(n, folder, seed)` writes `n` offerings as real YAML files (100 per file,
one file per category) that `concierge check` accepts; `questions(folder, k, seed)`
derives paraphrase-like questions from the written needs (words dropped, swapped for a
synonym, misspelt, wrapped in chatty filler) plus out-of-scope ones.

Text lengths follow the sample catalogue: names of 2-4 words, summaries of 10-20 words,
3-6 needs of 6-14 words, 2-5 keywords. Vocabulary is drawn Zipf-like from word lists
and from made-up product names and jargon, so it keeps growing with the catalogue
(about as fast as a real one's) instead of repeating one sentence 10,000 times.
"""

from __future__ import annotations

import random
from itertools import accumulate
from pathlib import Path
from typing import Any

import yaml

from bot.catalogue.loader import load_catalog

PER_FILE = 100

NOUNS = """laptop monitor printer scanner headset webcam keyboard mouse docking-station phone
tablet badge mailbox calendar distribution-list shared-mailbox account password licence
database server backup restore firewall vpn wifi network router switch cable desk
meeting-room projector screen whiteboard chat channel workspace site folder drive file
archive document spreadsheet report dashboard invoice payroll timesheet expense contract
form workflow approval ticket incident request change release deployment pipeline
repository build container cluster certificate domain dns website intranet portal app
application integration api token key vault secret identity group role permission access
audit policy compliance training course onboarding offboarding relocation travel vehicle
fleet warehouse scanner-gun label pallet shipment route driver depot forklift tracker
sensor camera alarm door lock kiosk signage podcast video recording transcript translation
survey poll newsletter campaign crm lead customer supplier purchase-order catalogue
inventory asset warranty repair replacement loan-device sim-card roaming hotspot modem
storage quota share mailbox-rule signature template font plugin macro script notebook
model dataset analytics forecast budget cost-centre approval-chain mentor buddy locker
parking canteen""".split()

VERBS = """need want request order get set-up install configure reset unlock restore recover
share publish record transcribe translate schedule book cancel extend renew replace repair
upgrade migrate move archive delete export import connect sync sign print scan track
monitor report approve review audit encrypt back-up test deploy build host automate
integrate analyse visualise forecast budget onboard offboard train""".split()

ADJECTIVES = """new old broken slow shared secure external temporary permanent mobile remote
personal team-wide company-wide large small urgent monthly daily offline encrypted
private public second spare faster bigger standard premium basic advanced legacy
regional global internal quarterly""".split()

CONTEXTS = """for my team|for a new starter|for the project|from home|on the road|at the
depot|for the audit|before the deadline|for a customer visit|for the board meeting|for
our contractors|for the night shift|in the warehouse|for the trade fair|for next
quarter|for the migration|across all sites|for the pilot|in the field|for compliance
reasons|for the training week|for the new office|for my manager|for a workshop""".replace(
    "\n", " ").split("|")

TEMPLATES = [
    "I {verb} {a} {adj} {noun} {context}",
    "we {verb} to {verb2} the {noun} {context}",
    "my {noun} is {adj} and I {verb} {a} {noun2}",
    "how do I {verb2} {a} {adj} {noun}",
    "can someone {verb2} the {noun} and the {noun2} {context}",
    "the {adj} {noun} keeps failing and I {verb} help",
    "I have to {verb2} {noun} for {jargon} {context}",
    "our team {verb}s a {noun} to {verb2} {jargon} data",
    "{verb2} {noun} and {noun2} {context}",
    "is there a way to {verb2} my {noun} with {brand}",
]

SYNONYMS = {"need": "require", "want": "would like", "get": "obtain", "broken": "damaged",
            "slow": "sluggish", "new": "fresh", "old": "ancient", "team": "group",
            "set-up": "prepare", "share": "distribute", "laptop": "notebook",
            "phone": "mobile", "help": "support", "fix": "mend", "order": "buy",
            "project": "initiative", "customer": "client", "report": "summary"}

FILLERS = ["", "", "hi, ", "hello! ", "quick question: ", "please help, ", "urgent: ",
           "sorry to bother you, "]
TRAILERS = ["", "", "", "?", " please", " asap", " thanks!", " - any idea?"]

OUT_OF_SCOPE = ["what's the weather in {city} tomorrow", "recipe for {food} please",
                "who won the {sport} match last night", "tell me a joke about {food}",
                "best {food} restaurant near {city}", "how tall is the tower in {city}"]
CITIES = "Hamburg Lisbon Oslo Manchester Lyon Porto Krakow Turin Ghent Bergen".split()
FOODS = "sourdough lasagne ramen paella curry pancakes goulash falafel".split()
SPORTS = "football handball cricket rugby tennis".split()

SYLLABLES = """ka lo mi zen tra vo rix ta nor bel quo dex fin lu mar ora syn tek vel
cor ion pli gra hub ny sto ver ax um el""".split()


_ZIPF: dict[int, list[float]] = {}


def _zipf_choice(rng: random.Random, words: list[str]) -> str:
    # Rank-frequency ~ 1/rank: a few words are everywhere, most are rare, as in real text.
    weights = _ZIPF.get(len(words))
    if weights is None:
        weights = _ZIPF[len(words)] = list(accumulate(1 / r for r in range(1, len(words) + 1)))
    return rng.choices(words, cum_weights=weights)[0]


def _made_up(rng: random.Random, parts: int) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(parts))


class _Vocabulary:
    def __init__(self, rng: random.Random, n_offerings: int) -> None:
        self.rng = rng
        self.nouns = list(NOUNS)
        rng.shuffle(self.nouns)
        # Jargon grows with the catalogue: team- and product-specific words.
        self.jargon = sorted({_made_up(rng, rng.randint(2, 3))
                              for _ in range(max(50, n_offerings // 2))})
        rng.shuffle(self.jargon)

    def sentence(self, brand: str, template: str | None = None) -> str:
        rng = self.rng
        noun = _zipf_choice(rng, self.nouns).replace("-", " ")
        fields = {"verb": rng.choice(VERBS).replace("-", " "),
                  "verb2": rng.choice(VERBS).replace("-", " "),
                  "adj": rng.choice(ADJECTIVES).replace("-", " "),
                  "noun": noun,
                  "noun2": _zipf_choice(rng, self.nouns).replace("-", " "),
                  "context": rng.choice(CONTEXTS).strip(),
                  "jargon": _zipf_choice(rng, self.jargon), "brand": brand,
                  "a": "an" if noun[0] in "aeiou" else "a"}
        return (template or rng.choice(TEMPLATES)).format(**fields)


def offering(i: int, vocab: _Vocabulary, category: str) -> dict[str, Any]:
    rng = vocab.rng
    brand = _made_up(rng, rng.randint(2, 3)).capitalize()
    head = _zipf_choice(rng, vocab.nouns).replace("-", " ")
    name = " ".join([brand, *rng.sample(ADJECTIVES, rng.randint(0, 1)), head]).strip()
    oid = f"{brand.lower()}-{head.replace(' ', '-')}-{i}"
    summary_words = [*vocab.sentence(brand).split(), *vocab.sentence(brand).split()]
    summary = " ".join(summary_words[:rng.randint(10, 20)]).capitalize() + "."
    needs = sorted({vocab.sentence(brand) for _ in range(rng.randint(3, 6))})
    keywords = sorted({head, brand.lower(), *(_zipf_choice(rng, vocab.jargon)
                                              for _ in range(rng.randint(1, 4)))})
    entry: dict[str, Any] = {
        "id": oid, "name": name, "summary": summary,
        "kind": rng.choice(["product", "service"]), "category": category,
        "owner": {"team": f"{category} team", "contact": f"#it-{category.lower()}"},
        "request": {"url": f"https://it.example.test/request/{oid}"},
        "needs": needs, "keywords": keywords,
    }
    if rng.random() < 0.3:
        entry["cost"] = f"€{rng.randint(5, 2000)} per {rng.choice(['month', 'user', 'year'])}"
    return entry


def write_catalogue(n: int, folder: Path, seed: int = 1) -> Path:
    """`n` offerings as YAML files under `folder` (created); the same seed, the same files."""
    rng = random.Random(f"catalogue-{n}-{seed}")
    vocab = _Vocabulary(rng, n)
    folder.mkdir(parents=True, exist_ok=True)
    for start in range(0, n, PER_FILE):
        category = _made_up(rng, 2).capitalize()
        entries = [offering(i, vocab, category) for i in range(start, min(n, start + PER_FILE))]
        text = yaml.safe_dump({"offerings": entries}, sort_keys=False, allow_unicode=True,
                              width=100)
        (folder / f"{start // PER_FILE:04d}-{category.lower()}.yaml").write_text(
            text, encoding="utf-8")
    return folder


def perturb(rng: random.Random, text: str) -> str:
    """A paraphrase-like variant: words dropped or swapped, one typo, chatty filler."""
    words = text.split()
    if len(words) > 5 and rng.random() < 0.5:
        del words[rng.randrange(len(words))]
    words = [SYNONYMS.get(w, w) if rng.random() < 0.4 else w for w in words]
    if rng.random() < 0.3:
        j = rng.randrange(len(words))
        w = words[j]
        if len(w) > 4:
            k = rng.randrange(len(w) - 1)
            words[j] = w[:k] + w[k + 1] + w[k] + w[k + 2:]
    return rng.choice(FILLERS) + " ".join(words) + rng.choice(TRAILERS)


def questions(folder: Path, k: int, seed: int = 1, out_of_scope: float = 0.1) -> list[str]:
    """`k` questions: needs of randomly chosen offerings, perturbed; a share out of scope."""
    rng = random.Random(f"questions-{seed}")
    needs = [need for o in load_catalog(folder).offerings for need in o.needs]
    found: list[str] = []
    for _ in range(k):
        if rng.random() < out_of_scope:
            found.append(rng.choice(OUT_OF_SCOPE).format(
                city=rng.choice(CITIES), food=rng.choice(FOODS), sport=rng.choice(SPORTS)))
        else:
            found.append(perturb(rng, rng.choice(needs)))
    return found
