"""Incoming webhooks (Slack, Mattermost, Microsoft Teams): one JSON post, retried until it
lands or fails for good.

The body is ``{"text": summary, "blocks": [{"type": "section", "text": {"type": "mrkdwn",
"text": ...}}]}``, which all three accept. 429 is retried after its ``Retry-After``
(bounded), 5xx, timeouts and dropped connections after a doubling backoff; any other 4xx is
permanent. The URL is a secret: messages name the environment variable that holds it.
"""

from __future__ import annotations

import http.client
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from reporter.errors import DeliveryError

log = logging.getLogger(__name__)

#: the longest wait a ``Retry-After`` may ask for
MAX_RETRY_AFTER = 300.0
#: the largest block text chat services take in one section
MAX_BLOCK_TEXT = 2900


@dataclass(frozen=True)
class WebhookSettings:
    """A job's ``deliver.webhook``: the URL (from the variable ``url_env``; None when it is
    not set) and how long to wait and retry."""

    url_env: str
    url: str | None = field(repr=False)
    timeout_seconds: float
    retries: int
    retry_backoff_seconds: float

    @property
    def name(self) -> str:
        """How messages name the webhook without its URL: ``webhook $SLACK_URL``."""
        return f"webhook ${self.url_env}"


def payload(summary: str, details: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """The JSON body: the summary as ``text`` and the whole message as one mrkdwn block."""
    body = "\n".join((f"*{summary}*", *details)) if details else summary
    if len(body) > MAX_BLOCK_TEXT:
        body = body[:MAX_BLOCK_TEXT - 1] + "\u2026"
    return {"text": summary,
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": body}}]}


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None  # an HTTP date: the backoff decides
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def _post_once(target: WebhookSettings, url: str, data: bytes) -> tuple[int, str | None, str]:
    """One POST: the status, the Retry-After header and the start of the body."""
    request = urllib.request.Request(url, data=data, method="POST", headers={
        "Content-Type": "application/json; charset=utf-8", "User-Agent": "reporter"})
    try:
        with urllib.request.urlopen(request, timeout=target.timeout_seconds) as response:
            return response.status, None, response.read(200).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        try:
            text = exc.read(200).decode("utf-8", "replace")
        except OSError:
            text = ""
        finally:
            exc.close()
        return exc.code, exc.headers.get("Retry-After"), text


def post(target: WebhookSettings, body: dict[str, Any], *,
         sleep: Callable[[float], None] = time.sleep) -> int:
    """Post ``body`` once it lands; the number of attempts it took. DeliveryError (naming the
    variable, never the URL) when it is refused for good or every retry failed."""
    if target.url is None:
        raise DeliveryError(f"{target.name}: environment variable {target.url_env} "
                            f"(webhook url_env) is not set")
    url = target.url
    data = json.dumps(body, ensure_ascii=False).encode("utf-8")
    attempts = 1 + max(0, target.retries)
    last = ""
    for attempt in range(1, attempts + 1):
        wait = target.retry_backoff_seconds * 2 ** (attempt - 1)
        try:
            status, retry_after, text = _post_once(target, url, data)
        except TimeoutError:
            last = f"no answer within {target.timeout_seconds:g} s"
        except (ConnectionError, http.client.HTTPException, urllib.error.URLError,
                OSError) as exc:
            reason = getattr(exc, "reason", None)
            if isinstance(reason, TimeoutError):
                last = f"no answer within {target.timeout_seconds:g} s"
            else:
                last = f"connection failed: {type(reason or exc).__name__}"
        else:
            if 200 <= status < 300:
                return attempt
            snippet = " ".join(text.split())[:120]
            last = f"HTTP {status}" + (f" ({snippet})" if snippet else "")
            if status == 429:
                wait = _retry_after(retry_after) or wait
            elif status < 500:
                raise DeliveryError(f"{target.name} refused the post: {last}")
        if attempt < attempts:
            log.warning("%s: %s; trying again in %.1f s (attempt %d of %d)", target.name, last,
                        wait, attempt + 1, attempts)
            sleep(wait)
    raise DeliveryError(f"{target.name}: {last} after {attempts} attempts")
