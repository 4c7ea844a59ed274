"""The webhook channel against a real HTTP server on loopback with scripted faults."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from reporter.deliver import webhook
from reporter.errors import DeliveryError
from tests.hookserver import HookServer, hook_server


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[HookServer]:
    monkeypatch.setenv("NO_PROXY", "*")
    monkeypatch.setenv("no_proxy", "*")
    with hook_server() as running:
        yield running


def target(server: HookServer, **kw: float) -> webhook.Target:
    values = {"timeout_seconds": 0.5, "retries": 4, "retry_backoff_seconds": 0.01, **kw}
    return webhook.Target(server.url, "TEAM_HOOK", values["timeout_seconds"],
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
    hook = webhook.Target(url, "TEAM_HOOK", 0.5, 1, 0.01)
    with pytest.raises(DeliveryError, match=r"^webhook \$TEAM_HOOK: connection failed"):
        webhook.post(hook, webhook.payload("x"), sleep=lambda s: None)
