"""The webhook channel against a real HTTP server on loopback with scripted faults."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

from reporter.config import load
from reporter.deliver import webhook
from reporter.errors import DeliveryError
from reporter.jobs import ledger, plan, runner
from reporter.store import orgs as store
from tests.helpers import load as ingest
from tests.helpers import row
from tests.hookserver import HookServer, hook_server


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[HookServer]:
    monkeypatch.setenv("NO_PROXY", "*")
    monkeypatch.setenv("no_proxy", "*")
    with hook_server() as running:
        yield running


def target(server: HookServer, **kw: float) -> webhook.WebhookSettings:
    values = {"timeout_seconds": 0.5, "retries": 4, "retry_backoff_seconds": 0.01, **kw}
    return webhook.WebhookSettings("TEAM_HOOK", server.url, values["timeout_seconds"],
                                   int(values["retries"]), values["retry_backoff_seconds"])


def test_payload_is_what_slack_mattermost_and_teams_accept() -> None:
    body = webhook.payload("Acme Corp has spent $4,012.55.", ["Top models: x ($1.00)."])
    assert body == {"text": "Acme Corp has spent $4,012.55.",
                    "blocks": [{"type": "section", "text": {
                        "type": "mrkdwn",
                        "text": "*Acme Corp has spent $4,012.55.*\nTop models: x ($1.00)."}}]}
    assert len(webhook.payload("x", ["y" * 10_000])["blocks"][0]["text"]["text"]) <= 2900


@pytest.mark.parametrize("script", [["429"], ["500", "500"], ["timeout"], ["drop"],
                                    ["429", "500", "timeout", "drop"]])
def test_faults_are_retried_and_one_post_lands(server: HookServer, script: list[str]) -> None:
    server.script = list(script)
    waits: list[float] = []
    attempts = webhook.post(target(server), webhook.payload("hello"), sleep=waits.append)
    assert attempts == len(script) + 1
    assert server.posts == [webhook.payload("hello")]
    if script[0] == "429":
        assert waits[0] == 1.0  # the server's Retry-After, not the backoff


def test_retry_after_is_bounded(server: HookServer) -> None:
    server.script, server.retry_after = ["429"], "86400"
    waits: list[float] = []
    webhook.post(target(server), webhook.payload("x"), sleep=waits.append)
    assert waits == [webhook.MAX_RETRY_AFTER]


def test_real_retry_after_wait(server: HookServer) -> None:
    server.script = ["429"]
    assert webhook.post(target(server), webhook.payload("x")) == 2
    assert len(server.posts) == 1


def test_other_4xx_is_permanent_and_the_url_is_never_shown(server: HookServer) -> None:
    server.script = ["400", "ok"]
    with pytest.raises(DeliveryError) as caught:
        webhook.post(target(server), webhook.payload("x"), sleep=lambda s: None)
    assert str(caught.value).startswith("webhook $TEAM_HOOK refused the post: HTTP 400")
    assert "secret-token" not in str(caught.value)
    assert "127.0.0.1" not in str(caught.value)
    assert server.attempts == 1
    assert server.posts == []


def test_giving_up_says_why_once(server: HookServer) -> None:
    server.script = ["500"] * 3
    with pytest.raises(DeliveryError) as caught:
        webhook.post(target(server, retries=2), webhook.payload("x"), sleep=lambda s: None)
    assert str(caught.value) == "webhook $TEAM_HOOK: HTTP 500 (no) after 3 attempts"
    assert "secret-token" not in str(caught.value)


def test_nobody_listening_is_a_connection_failure() -> None:
    with hook_server() as gone:
        url = gone.url
    hook = webhook.WebhookSettings("TEAM_HOOK", url, 0.5, 1, 0.01)
    with pytest.raises(DeliveryError, match=r"^webhook \$TEAM_HOOK: connection failed"):
        webhook.post(hook, webhook.payload("x"), sleep=lambda s: None)


def test_a_report_job_posts_its_summary_once(sqlite_engine: Engine, tmp_path: Path,
                                             server: HookServer,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEAM_HOOK", server.url)
    path = tmp_path / "jobs.yaml"
    path.write_text("output: out\njobs:\n  weekly:\n    period: previous-week\n"
                    "    formats: [json]\n    deliver:\n      store: true\n"
                    "      webhook: {url_env: TEAM_HOOK, retry_backoff_seconds: 0.01}\n")
    config = load(path)
    store.set_org(sqlite_engine, "acme", name="Acme Corp", timezone="UTC")
    ingest(sqlite_engine, [row("e1", "2026-11-17T10:00:00Z", cost="12.5")])
    now = datetime(2026, 11, 24, 9, tzinfo=UTC)
    server.script = ["500", "drop"]
    units = plan.plan(sqlite_engine, config, "weekly", as_of=now)
    assert [o.state for o in runner.run_units(sqlite_engine, config, units, now=now)] == [
        "delivered"]
    assert [o.state for o in runner.run_units(sqlite_engine, config, units, now=now)] == [
        "already"]
    assert len(server.posts) == 1
    text = server.posts[0]["text"]
    assert text.startswith("Acme Corp AI usage, Nov 16 \u2013 22, 2026 (UTC): $12.50 over 1 "
                           "request.")
    # the channel hears of the report, never of where the server keeps it
    assert str(tmp_path) not in str(server.posts[0])
    assert "secret-token" not in str(ledger.get(sqlite_engine, units[0]))


@pytest.mark.parametrize("status", ["301", "302", "303", "307", "308"])
def test_a_redirect_is_never_followed(server: HookServer, status: str) -> None:
    """A 3xx is a failure naming its status: the body never goes elsewhere, and a 200 to a
    GET of the new place never counts as delivered."""
    server.script = [status]
    with pytest.raises(DeliveryError) as caught:
        webhook.post(target(server), webhook.payload("x"), sleep=lambda s: None)
    assert str(caught.value) == (f"webhook $TEAM_HOOK answered HTTP {status}, a redirect, "
                                 f"which is not followed: set the variable to the final URL")
    assert server.attempts == 1
    assert server.gets == []
    assert server.posts == []


def test_the_timeout_bounds_the_whole_request(server: HookServer) -> None:
    """A server that drips its answer a byte at a time cannot hold a post longer than
    ``timeout_seconds`` per attempt (each byte arrives well within it)."""
    server.script = ["drip", "drip"]
    started = time.monotonic()
    with pytest.raises(DeliveryError) as caught:
        webhook.post(target(server, timeout_seconds=1, retries=1), webhook.payload("x"),
                     sleep=lambda s: None)
    took = time.monotonic() - started
    assert str(caught.value) == "webhook $TEAM_HOOK: no answer within 1 s after 2 attempts"
    assert took < 3.5, took  # two attempts of 1 s, not 2 x 9 s of dripping
    assert server.posts == []


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "soon", "",
                                   "Wed, 21 Oct 2015 07:28:00 GMT"])
def test_a_retry_after_that_is_not_a_number_uses_the_backoff(server: HookServer,
                                                             value: str) -> None:
    server.script, server.retry_after = ["429"], value
    waits: list[float] = []
    assert webhook.post(target(server), webhook.payload("x"), sleep=waits.append) == 2
    assert waits == [0.01]


@pytest.mark.parametrize(("url", "problem"), [
    ("http://", "holds a URL without a host"),
    ("https://", "holds a URL without a host"),
    ("https://[hooks.example/x", "does not hold a valid URL (Invalid IPv6 URL)"),
    ("https://hooks.example:port/x", "does not hold a valid URL (Port could not be cast "
                                     "to integer value as 'port')"),
    ("ftp://hooks.example/x", "does not hold an http(s) URL"),
    ("https://hooks example/x", "holds a URL with spaces or control characters"),
    ("http://hooks.example/secret", "holds a plain http:// URL to hooks.example: its "
                                    "secret would travel unencrypted; use https, or set "
                                    "allow_plaintext: true"),
])
def test_a_url_that_cannot_be_used_is_one_line(url: str, problem: str) -> None:
    hook = webhook.WebhookSettings("TEAM_HOOK", url, 0.5, 0, 0.01)
    with pytest.raises(DeliveryError) as caught:
        webhook.post(hook, webhook.payload("x"), sleep=lambda s: None)
    assert str(caught.value) == f"webhook $TEAM_HOOK: environment variable TEAM_HOOK {problem}"
    assert "secret" not in problem or "secret would" in problem


def test_a_url_the_client_refuses_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """A URL that passes the checks but that the HTTP client still refuses (a control
    character in the path) is one line, not a traceback."""
    hook = webhook.WebhookSettings("TEAM_HOOK", "https://127.0.0.1:1/a\u00e9\x85b", 0.5, 0, 0)
    monkeypatch.setattr(webhook, "url_problem", lambda url, allow=False: None)
    with pytest.raises(DeliveryError) as caught:
        webhook.post(hook, webhook.payload("x"), sleep=lambda s: None)
    assert str(caught.value).startswith("webhook $TEAM_HOOK: ")
    assert "127.0.0.1" not in str(caught.value)


def test_plain_http_only_to_loopback_unless_allowed() -> None:
    assert webhook.url_problem("http://127.0.0.1:8080/x") is None
    assert webhook.url_problem("http://[::1]/x") is None
    assert webhook.url_problem("http://localhost/x") is None
    assert webhook.url_problem("https://hooks.slack.com/services/T/B/x") is None
    assert webhook.url_problem("http://hooks.example/x") is not None
    assert webhook.url_problem("http://127.0.0.1.evil.example/x") is not None
    assert webhook.url_problem("http://hooks.example/x", allow_plaintext=True) is None


HOSTILE = "<!channel> <https://evil.example|Re-authenticate> & [Log in](https://evil.example)"


def test_text_from_data_is_escaped_for_every_chat() -> None:
    """A name cannot ping a channel, disguise a link or add markup in Slack, Mattermost or
    Teams; an email address stays as it is."""
    body = webhook.payload(f"{HOSTILE} @channel @all spent $5.", [f"Top: {HOSTILE} (bob@x.com)"])
    for text in (body["text"], body["blocks"][0]["text"]["text"]):
        assert "<" not in text
        assert ">" not in text
        assert "&lt;!channel&gt; &lt;https://evil.example|Re-authenticate&gt; &amp;" in text
        assert "](" not in text  # [text](url) is no link in Markdown
        assert "@channel" not in text
        assert "@all" not in text
        assert text.replace("\u200b", "").count("@channel") == 1  # still reads the same
    assert "bob@x.com" in body["blocks"][0]["text"]["text"]


def test_markup_from_data_is_broken_but_addresses_stay_whole() -> None:
    text = webhook.escape("Bob *bold* _it_ `code` ~gone~ first_last@acme.com")
    marks = [i for i, c in enumerate(text) if c in "*_`~" and text[i - 1:i + 2] != "t_l"]
    assert len(marks) == 8
    assert all(text[i - 1] == "\u200b" for i in marks)  # each opens or closes nothing
    assert "first_last@acme.com" in text
    assert text.replace("\u200b", "") == "Bob *bold* _it_ `code` ~gone~ first_last@acme.com"


@pytest.mark.parametrize("url", ["https://user:pw@hooks.example.com/x",
                                 "https://hooks.example.com/x\x7f"])
def test_urls_retrying_cannot_fix_are_refused_in_one_line(url: str) -> None:
    problem = webhook.url_problem(url)
    assert problem is not None
    assert "pw" not in problem
    assert "hooks.example.com" not in problem
