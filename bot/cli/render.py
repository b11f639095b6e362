"""Decisions as plain text (terminal) and as JSON-ready dicts (the `--json` contract)."""

from __future__ import annotations

from typing import Any

from bot.catalogue.models import Catalog, Decision, DecisionKind, Offering, Problem

SERVICE_DESK_TEXT = "Ask the IT service desk, and we'll note that the catalogue is missing this."


def offering_lines(offering: Offering, catalog: Catalog) -> list[str]:
    lines = [f"{offering.name}  [{offering.kind.value}]",
             f"  {offering.kind.explain()}",
             f"  {offering.summary}"]
    if offering.lifecycle.value == "pilot":
        lines.append("  Pilot: available to a limited group and may still change.")
    if offering.includes:
        names = [catalog[i].name if i in catalog else i for i in offering.includes]
        lines.append(f"  Includes: {', '.join(names)}")
    contact = f" ({offering.owner.contact})" if offering.owner.contact else ""
    lines.append(f"  Owner: {offering.owner.team}{contact}")
    if offering.request.has_form:
        lines.append(f"  Request in Slack: a form of {len(offering.request.form)} questions, "
                     f"sent to {request_destinations(offering)}")
    if offering.request.url:
        lines.append(f"  Request: {offering.request.url}")
    if offering.request.steps:
        lines.append(f"  How to request: {offering.request.steps}")
    if offering.cost:
        lines.append(f"  Cost: {offering.cost}")
    if offering.service_level:
        lines.append(f"  Service level: {offering.service_level}")
    if offering.audience:
        lines.append(f"  For: {offering.audience}")
    return lines


def request_destinations(offering: Offering) -> str:
    deliver_to = offering.request.deliver_to
    if deliver_to is None:
        return "nowhere"
    places = []
    if deliver_to.channel:
        places.append(deliver_to.channel)
    if deliver_to.owner:
        places.append(f"the owner ({offering.owner.contact})")
    if deliver_to.webhook:
        places.append(f"the {deliver_to.webhook} webhook")
    return ", ".join(places)


def decision_text(decision: Decision, catalog: Catalog) -> str:
    head = f"? {decision.query}"
    if decision.kind is DecisionKind.ANSWER and decision.offering is not None:
        body = offering_lines(decision.offering, catalog)
        if decision.retired is not None:
            body.insert(1, f"  ({decision.retired.name} is retired; this replaces it.)")
    elif decision.kind is DecisionKind.CLARIFY:
        body = ["Did you mean one of these?"]
        for n, offering in enumerate(decision.choices, 1):
            body.append(f"  {n}. {offering.name} [{offering.kind.value}]: {offering.summary}")
    else:
        body = ["I don't know an offering for that.", f"  {SERVICE_DESK_TEXT}"]
    return "\n".join([head, *body, f"  Why: {decision.why}"])


def decision_json(decision: Decision) -> dict[str, Any]:
    """The stable JSON shape documented in docs/cli.md."""
    answer = decision.offering.id if decision.offering is not None else None
    return {
        "query": decision.query,
        "decision": decision.kind.value,
        "answer": answer,
        "confidence": decision.confidence,
        "candidates": [
            {"id": c.offering.id, "name": c.offering.name, "score": round(c.score, 4)}
            for c in decision.candidates[:5]
        ],
        "why": decision.why,
    }


def problem_json(problem: Problem) -> dict[str, Any]:
    return {"path": problem.path, "line": problem.line, "field": problem.field,
            "message": problem.message, "severity": problem.severity.value}
