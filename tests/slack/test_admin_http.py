"""Admins and recording over real HTTP: `/concierge <subcommand>` gating, reports with
numbers from what was asked, reload, clicks tied to their question, database down.

The app runs as in `conftest.running_app` (one listener thread, so a later reply
means every earlier request was handled), with admin settings added.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    ANSWER_LAPTOP,
    CLARIFY_SHARING,
    COMPANY_CAR,
    NONE_QUESTION,
    serving,
    slack_env,
)
from slackfakes import Call, FakeSlackAPI, SlackSender, all_text, button_parts, buttons
from sqlalchemy import text

from bot.slack.app import Runtime, SlackConfig, build_runtime, create_app, make_client
from bot.slack.replies import MESSAGE_BLOCK_LIMIT, SECTION_TEXT_LIMIT
from bot.store.database import QuestionRecord
from bot.store.tables import utcnow

ADMIN = "U0ADMIN1"
GROUP = "S0ADMINS1"
GROUPIE = "U0GROUPIE"
ALICE = "U0ALICE"


@dataclass
class App:
    slack: SlackSender
    fake: FakeSlackAPI
    runtime: Runtime

    def sentinel(self) -> None:
        channel = f"D0SENT{len(self.fake.calls)}"
        assert self.slack.dm(ANSWER_LAPTOP, channel=channel).status == 200
        self.fake.wait_for("chat.postMessage", lambda c: c.params.get("channel") == channel)

    def rows(self, sql: str) -> list[Any]:
        with self.runtime.guard.store.engine.connect() as conn:
            return list(conn.execute(text(sql)).all())


StartApp = Callable[..., App]


@pytest.fixture
def start_app(fake_slack: FakeSlackAPI, catalogue_dir: Path,
              tmp_path: Path) -> Iterator[StartApp]:
    def start(**extra: str) -> App:
        env = {**slack_env(fake_slack, catalogue_dir, tmp_path / "data"),
               "CONCIERGE_ADMINS": ADMIN, "CONCIERGE_ADMIN_GROUP": GROUP,
               "CONCIERGE_USER_HASH_KEY": "k" * 32, **extra}
        config = SlackConfig.from_env(env)
        client = make_client(config)
        runtime = build_runtime(config, client)
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="listener")
        app = create_app(config, client=client, runtime=runtime, listener_executor=executor)
        # Unwound last first: the server stops, then the listeners finish, then the store.
        stack.callback(runtime.guard.store.close)
        stack.callback(executor.shutdown, wait=True)
        url = stack.enter_context(serving(app, config))
        return App(SlackSender(url, fake_slack), fake_slack, runtime)

    with ExitStack() as stack:
        yield start


def responses(app: App) -> list[Call]:
    return app.fake.calls_to("response_url")


def run(app: App, text_: str, user: str) -> list[dict[str, Any]]:
    """`/concierge text` as `user`; the blocks of each message it answered with."""
    before = len(responses(app))
    assert app.slack.command(text_, user=user).status == 200
    app.sentinel()
    return [c.params["blocks"] for c in responses(app)[before:]]


def dm(app: App, question: str, channel: str) -> Call:
    assert app.slack.dm(question, channel=channel).status == 200
    [posted] = app.fake.wait_for("chat.postMessage", lambda c: c.params["channel"] == channel)
    return posted


# --- gating --------------------------------------------------------------------------------


def test_a_non_admin_gets_a_polite_refusal_and_the_attempt_is_logged(
        start_app: StartApp, caplog: pytest.LogCaptureFixture) -> None:
    app = start_app()
    with caplog.at_level(logging.INFO):
        [refusal] = run(app, "stats", ALICE)
    assert "only Concierge admins can use it" in all_text(refusal)
    assert "Questions:" not in all_text(refusal)
    assert any(r.levelno == logging.WARNING and "refused /concierge stats" in r.getMessage()
               for r in caplog.records)
    assert ALICE not in caplog.text  # who tried is not for the log (docs/admins.md)


def test_text_that_is_not_exactly_a_subcommand_is_a_need_for_everyone(
        start_app: StartApp) -> None:
    app = start_app()
    [answer] = run(app, "check my laptop is old and slow", ALICE)
    assert "Standard laptop" in all_text(answer)


def test_help_lists_admin_subcommands_to_admins_only(start_app: StartApp) -> None:
    app = start_app()
    everyone = "\n".join(all_text(b) for b in run(app, "help", ALICE))
    admins = "\n".join(all_text(b) for b in run(app, "help", ADMIN))
    assert "Tell me what you need" in everyone and "Tell me what you need" in admins
    for sub in ("/concierge stats [days]", "/concierge gaps [days]", "/concierge reload",
                "/concierge owners", "/concierge check"):
        assert sub in admins and sub not in everyone


def test_usergroup_members_are_admins_and_the_lookup_is_cached(start_app: StartApp) -> None:
    app = start_app()
    app.fake.usergroups[GROUP] = [GROUPIE]
    [owners] = run(app, "owners", GROUPIE)
    assert "Workplace Services" in all_text(owners)
    run(app, "check", GROUPIE)
    assert "refused" not in all_text(run(app, "stats", ALICE)[0])
    calls = app.fake.calls_to("usergroups.users.list")
    assert len(calls) == 1 and calls[0].params["usergroup"] == GROUP


def test_a_failing_group_lookup_grants_nothing(start_app: StartApp) -> None:
    app = start_app()  # the fake knows no usergroup: the lookup answers no_such_subteam
    [refusal] = run(app, "stats", GROUPIE)
    assert "only Concierge admins" in all_text(refusal)
    [stats] = run(app, "stats", ADMIN)  # listed admins are unaffected
    assert "Questions:" in all_text(stats)


def test_a_subcommand_with_wrong_arguments_says_what_is_wrong(start_app: StartApp) -> None:
    app = start_app()
    [slip] = run(app, "stats abc", ADMIN)
    body = all_text(slip)
    assert "Not a Concierge command" in body
    assert "`stats` takes a number of days from 1 to 3650" in body
    assert "I don't know an offering" not in body
    [refused] = run(app, "stats abc", ALICE)
    assert "only Concierge admins can use it" in all_text(refused)
    # Neither is a question: nothing for `gaps` to list.
    assert app.rows("SELECT COUNT(*) FROM questions WHERE text LIKE 'stats%'") == [(0,)]


def test_an_admins_direct_message_of_a_subcommand_runs_it(start_app: StartApp) -> None:
    app = start_app()
    assert app.slack.dm("stats", user=ADMIN, channel="D0ADMIN").status == 200
    [report] = app.fake.wait_for("chat.postMessage", lambda c: c.params["channel"] == "D0ADMIN")
    assert "Concierge stats" in all_text(report.params["blocks"])
    # Anyone else's DM "stats" stays a question (they may be looking for a dashboard).
    assert app.slack.dm("stats", user=ALICE, channel="D0ALICE2").status == 200
    [answer] = app.fake.wait_for("chat.postMessage",
                                 lambda c: c.params["channel"] == "D0ALICE2")
    assert "Concierge stats" not in all_text(answer.params["blocks"])


def test_admins_own_questions_are_left_out_of_the_reports(start_app: StartApp) -> None:
    app = start_app()
    assert app.slack.dm(NONE_QUESTION, user=ADMIN, channel="D0ADMIN").status == 200
    app.fake.wait_for("chat.postMessage", lambda c: c.params["channel"] == "D0ADMIN")
    dm(app, ANSWER_LAPTOP, "D0EMPLOYEE")
    [stats] = run(app, "stats", ADMIN)
    body = all_text(stats)
    assert "Questions: 1 from 1 person" in body
    assert "Left out: 1 question asked by admins" in body
    [gaps] = run(app, "gaps", ADMIN)
    assert "sourdough" not in all_text(gaps)


# --- reports with numbers from what was asked ----------------------------------------------


def test_stats_and_gaps_count_what_was_asked(start_app: StartApp) -> None:
    app = start_app()
    dm(app, ANSWER_LAPTOP, "D0Q1")
    dm(app, NONE_QUESTION, "D0Q2")
    dm(app, "how do I bake sourdough bread at home", "D0Q3")
    dm(app, CLARIFY_SHARING, "D0Q4")
    [stats] = run(app, "stats 7", ADMIN)
    body = all_text(stats)
    assert "last 7 days" in body
    assert "Questions: 4 from 1 person" in body
    assert "Answered: 1 (25%)" in body and "Declined: 2 (50%)" in body
    assert "Clarified: 1 (25%); a choice was picked in 0" in body
    assert "Standard laptop [standard-laptop]" in body
    [gaps] = run(app, "gaps", ADMIN)
    lines = all_text(gaps)
    assert "3 unmet needs in 2 groups" in lines
    assert "2 × “how do I bake sourdough bread" in lines
    assert "no choice picked 1" in lines


def test_feedback_and_clicks_are_tied_to_the_question_they_act_on(start_app: StartApp) -> None:
    app = start_app()
    card = dm(app, ANSWER_LAPTOP, "D0CARD")
    blocks = card.params["blocks"]
    [question_id] = [r[0] for r in app.rows("SELECT id FROM questions")]
    feedback = next(b for b in buttons(blocks) if b["action_id"] == "feedback_not_helpful")
    request = next(b for b in buttons(blocks) if b["action_id"].startswith("request_offering"))
    assert button_parts(feedback["value"]) == ("standard-laptop", question_id)
    message = {"type": "message", "ts": "1700000100.000001", "text": card.params["text"],
               "blocks": blocks}
    app.slack.click(feedback["action_id"], feedback["value"], message=message)
    app.slack.click(request["action_id"], request["value"])
    app.sentinel()
    assert app.rows("SELECT question_id, offering_id, helpful FROM feedback") == [
        (question_id, "standard-laptop", False)]
    assert app.rows("SELECT question_id, offering_id FROM request_clicks") == [
        (question_id, "standard-laptop")]
    # The stored user is a keyed hash, never the id itself.
    assert "U0ALICE" not in repr(app.rows("SELECT * FROM feedback"))
    [gaps] = run(app, "gaps", ADMIN)
    assert "rated not helpful 1" in all_text(gaps)


def test_a_clarify_choice_marks_the_question_as_met(start_app: StartApp) -> None:
    app = start_app()
    card = dm(app, CLARIFY_SHARING, "D0CHOICE")
    choice = next(b for b in buttons(card.params["blocks"])
                  if b["action_id"].startswith("choose_offering_"))
    message = {"type": "message", "ts": "1700000100.000002", "text": card.params["text"],
               "blocks": card.params["blocks"]}
    app.slack.click(choice["action_id"], choice["value"], message=message)
    [update] = app.fake.wait_for("chat.update")
    offering_id, question_id = button_parts(choice["value"])
    # The chosen card's own feedback buttons still point at the same question.
    assert {button_parts(b["value"])[1] for b in buttons(update.params["blocks"])
            if b["action_id"].startswith("feedback_")} == {question_id}
    assert app.rows(f"SELECT chosen_offering_id FROM questions WHERE id = {question_id}") == [
        (offering_id,)]


# --- reload ----------------------------------------------------------------------------------



def test_reload_shows_what_changed_and_errors_keep_the_last_good_catalogue(
        start_app: StartApp, catalogue_dir: Path) -> None:
    app = start_app()
    catalogue = catalogue_dir / "catalogue.yaml"
    catalogue.write_text(catalogue.read_text().replace("Diagnosis and repair",
                                                       "Diagnosis and fixing") + COMPANY_CAR)
    [report] = run(app, "reload", ADMIN)
    body = all_text(report)
    assert "Reloaded: 8 offerings, generation 1" in body
    assert "Added (1)" in body and "company-car" in body
    assert "Changed (1)" in body and "laptop-repair" in body
    assert "Company car" in all_text(dm(app, "I need a company car for customer visits",
                                        "D0CAR").params["blocks"])

    (catalogue_dir / "broken.yaml").write_text("id: x\nname: X\nkindd: product\n")
    [failed] = run(app, "reload", ADMIN)
    body = all_text(failed)
    assert "Reload failed: still serving the last good catalogue (8 offerings)" in body
    assert f"{catalogue_dir / 'broken.yaml'}:3: kindd: unknown field" in body
    assert "Company car" in all_text(dm(app, "I need a company car for customer visits",
                                        "D0STILL").params["blocks"])
    [check] = run(app, "check", ADMIN)
    assert "errors" in all_text(check) and "still serving 8 offerings" in all_text(check)
    # The admin desk's check also shows the quality report of the catalogue being served.
    assert "Quality of the catalogue being served (8 offerings)" in all_text(check)
    assert "Decision rule: default" in all_text(check)
    assert "has 1 need" in all_text(check), "each finding says what to do"


def test_a_worker_picks_up_another_workers_reload_and_file_changes(
        start_app: StartApp, catalogue_dir: Path) -> None:
    first = start_app()
    second = start_app(CONCIERGE_WATCH_KNOWLEDGE="off")
    catalogue = catalogue_dir / "catalogue.yaml"
    catalogue.write_text(catalogue.read_text() + COMPANY_CAR)
    assert second.runtime.live.poll() is None  # not watching files, no new generation
    run(first, "reload", ADMIN)
    result = second.runtime.live.poll()
    assert result is not None and result.diff is not None
    assert result.diff.added == ("company-car",)
    assert second.runtime.live.poll() is None  # once only
    # With watching on, an edit on disk is enough.
    catalogue.write_text(catalogue.read_text().replace("A leased car", "A leased electric car"))
    result = first.runtime.live.poll()
    assert result is not None and result.diff is not None
    assert result.diff.changed == ("company-car",)


# --- long output -----------------------------------------------------------------------------


def test_a_long_gaps_report_is_split_within_slack_limits_and_nothing_is_lost(
        start_app: StartApp) -> None:
    app = start_app()
    store = app.runtime.guard.store
    groups = 1500
    for n in range(groups):
        # Eight made-up words per need: no two needs are alike, so each is its own line.
        digest = hashlib.sha256(str(n).encode()).hexdigest()
        words = " ".join(digest[i:i + 8] for i in range(0, 64, 8))
        store.record_question(QuestionRecord(
            asked_at=utcnow(), surface="dm", decision="none", confidence=0.0,
            latency_ms=1.0, text=f"I need {words}"))
    messages = run(app, "gaps 1", ADMIN)
    assert 2 <= len(messages) <= 5
    shown = 0
    for blocks in messages:
        assert len(blocks) <= MESSAGE_BLOCK_LIMIT
        for block in blocks:
            if block["type"] == "section":
                assert len(block["text"]["text"]) <= SECTION_TEXT_LIMIT
                shown += block["text"]["text"].count(" × ")
    assert shown == groups
    assert f"Part {len(messages)} of {len(messages)}" in all_text(messages[-1])


# --- the database is down ------------------------------------------------------------------


def test_with_the_database_down_the_bot_answers_and_warns_once(
        start_app: StartApp, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        # Nothing listens on port 1: connections are refused at once.
        app = start_app(DATABASE_URL="postgresql://concierge@127.0.0.1:1/concierge")
        for n in range(3):
            card = dm(app, ANSWER_LAPTOP, f"D0DOWN{n}")
            assert "Standard laptop" in card.params["text"]
            # Without a record, the buttons carry the offering (and their tag) only.
            values = {b["value"] for b in buttons(card.params["blocks"])
                      if b["action_id"].startswith("feedback_")}
            assert {button_parts(v) for v in values} == {("standard-laptop", None)}
        app.slack.click("feedback_helpful", values.pop())
        [stats] = run(app, "stats", ADMIN)
    assert "the database is unavailable" in all_text(stats)
    store_warnings = [r for r in caplog.records
                      if r.levelno >= logging.WARNING and r.name == "concierge.store"]
    assert len(store_warnings) == 1, [r.getMessage() for r in store_warnings]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# --- the stats chart and suggested needs ---------------------------------------------------


def test_stats_posts_its_chart_to_the_admins_dm_through_the_upload_flow(
        start_app: StartApp) -> None:
    pytest.importorskip("matplotlib")  # CI installs the chart extra (tests/admin/test_chart)
    app = start_app()
    dm(app, ANSWER_LAPTOP, "D0Q1")
    dm(app, NONE_QUESTION, "D0Q2")
    [stats] = run(app, "stats 7", ADMIN)
    assert "Questions: 2 from 1 person" in all_text(stats)
    assert "*Chart*\nSent to your direct messages with Concierge." in all_text(stats)
    # Slack saw the three steps of the external upload flow, in order, for the DM it opened.
    [opened] = app.fake.calls_to("conversations.open")
    assert opened.params["users"] == ADMIN
    steps = [c.method for c in app.fake.calls
             if c.method in ("files.getUploadURLExternal", "upload",
                             "files.completeUploadExternal")]
    assert steps == ["files.getUploadURLExternal", "upload", "files.completeUploadExternal"]
    [announce] = app.fake.calls_to("files.getUploadURLExternal")
    [upload] = app.fake.uploads.values()
    assert announce.params["filename"] == "concierge-stats.png"
    assert int(announce.params["length"]) == upload.length == len(upload.data or b"")
    assert (upload.data or b"").startswith(b"\x89PNG\r\n\x1a\n")
    assert upload.alt_txt is not None and "2 questions: 50% answered" in upload.alt_txt
    [complete] = app.fake.calls_to("files.completeUploadExternal")
    assert complete.params["channel_id"] == "D" + ADMIN[1:] == upload.channel
    [shared] = [m for m in app.fake.messages_in(upload.channel) if m.get("files")]
    assert shared["text"].startswith("Concierge: questions per day, ")
    assert shared["files"][0]["mimetype"] == "image/png"


def test_without_the_files_scope_stats_says_what_to_grant(start_app: StartApp) -> None:
    pytest.importorskip("matplotlib")
    app = start_app()
    app.fake.scopes.discard("files:write")
    dm(app, ANSWER_LAPTOP, "D0Q1")
    [stats] = run(app, "stats", ADMIN)
    assert ("Could not post the chart: Slack answered `missing_scope`. The app needs the "
            "`files:write` scope: reinstall it from manifest.yaml.") in all_text(stats)
    assert not app.fake.uploads


def test_an_empty_period_gets_no_chart_and_says_so(start_app: StartApp) -> None:
    app = start_app()
    [stats] = run(app, "stats 3", ADMIN)
    assert "No questions in the last 3 days: nothing to draw." in all_text(stats)
    assert not app.fake.calls_to("files.getUploadURLExternal")


def test_suggest_shows_a_picked_choice_and_its_yaml(start_app: StartApp) -> None:
    app = start_app()
    card = dm(app, CLARIFY_SHARING, "D0CHOICE")
    choice = next(b for b in buttons(card.params["blocks"])
                  if b["action_id"].startswith("choose_offering_")
                  and b["value"].startswith("shared-drive"))
    app.slack.click(choice["action_id"], choice["value"], message={
        "type": "message", "ts": "1700000100.000002", "text": "", "blocks": []})
    app.sentinel()
    messages = run(app, "suggest", ADMIN)
    body = "\n".join(all_text(m) for m in messages)
    assert "Shared drive [shared-drive]" in body
    assert f"1 × “{CLARIFY_SHARING}” (picked after “Did you mean…” 1" in body
    # The snippet comes as a code block to copy, escaped like any other text.
    code = [b["text"]["text"] for m in messages for b in m
            if b.get("text", {}).get("text", "").startswith("```")]
    assert code and "share documents as a team" in code[0]
