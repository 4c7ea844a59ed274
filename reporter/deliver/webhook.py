"""Incoming webhooks (Slack, Mattermost, Microsoft Teams): one JSON post, retried until it
lands or fails for good.

The body is ``{"text": summary, "blocks": [{"type": "section", "text": {"type": "mrkdwn",
"text": ...}}]}``, which all three accept; its text is escaped so that nothing from the data
(a name, a project, a model) becomes a mention, a link or markup. 429 is retried after its
``Retry-After`` (bounded), 5xx, timeouts and dropped connections after a doubling backoff;
any other 4xx and every 3xx (no redirect is followed) are permanent. ``timeout_seconds``
bounds each attempt as a whole, however slowly a server answers. The URL is a secret:
messages name the environment variable that holds it, and a plain ``http://`` URL is only
used for a loopback host unless the job allows it.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import logging
import math
import re
import socket
import threading
import time
import urllib.error
import urllib.parse
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
#: a zero-width space: breaks a mention or a link's syntax without a visible trace
_BREAK = "\u200b"
#: what a chat would read as a mention (Mattermost, Teams: ``@channel``, ``@all``...) or as
#: the start of a Markdown link's target (``[text](url)``)
_MENTION = re.compile(r"(?<![\w.])@(?=\w)")
_LINK = re.compile(r"\]\(")
#: the markup characters of mrkdwn and Markdown where they can open or close a span
_MARKUP = re.compile(r"[*~`]|(?<!\w)_|_(?!\w)")


@dataclass(frozen=True)
class WebhookSettings:
    """A job's ``deliver.webhook``: the URL (from the variable ``url_env``; None when it is
    not set), how long to wait and retry, and whether a plain ``http://`` URL to another
    host than loopback is allowed."""

    url_env: str
    url: str | None = field(repr=False)
    timeout_seconds: float
    retries: int
    retry_backoff_seconds: float
    allow_plaintext: bool = False

    @property
    def name(self) -> str:
        """How messages name the webhook without its URL: ``webhook $SLACK_URL``."""
        return f"webhook ${self.url_env}"


def _loopback(host: str) -> bool:
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_problem(url: str, allow_plaintext: bool = False) -> str | None:
    """Why ``url`` cannot be posted to (the message never shows the URL), or None."""
    try:
        parts = urllib.parse.urlsplit(url.strip())
        host = parts.hostname
        parts.port  # noqa: B018 - a port that is not a number raises here
    except ValueError as exc:
        return f"does not hold a valid URL ({exc})"
    if parts.scheme.lower() not in ("https", "http"):
        return "does not hold an http(s) URL"
    if not host:
        return "holds a URL without a host"
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url.strip()):
        return "holds a URL with spaces or control characters"
    if parts.username is not None or parts.password is not None:
        return "holds a URL with a user name or password before its host"
    if parts.scheme.lower() == "http" and not allow_plaintext and not _loopback(host):
        return (f"holds a plain http:// URL to {host}: its secret would travel unencrypted; "
                f"use https, or set allow_plaintext: true")
    return None


def escape(text: str) -> str:
    """``text`` safe in Slack mrkdwn, Mattermost and Teams Markdown: ``&``, ``<`` and ``>``
    as entities (no ``<!channel>``, no ``<url|disguised>`` link), and no ``@mention``,
    ``[text](url)`` link or ``*bold*``/``_italic_``/``~strike~``/`` `code` `` markup either
    (each broken by an invisible zero-width space; ``first_last@x`` is left whole)."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MARKUP.sub(_BREAK + r"\g<0>", text)
    return _LINK.sub("]" + _BREAK + "(", _MENTION.sub("@" + _BREAK, text))


def payload(summary: str, details: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """The JSON body: the summary as ``text`` and the whole message as one mrkdwn block,
    both escaped (every text given may hold names from the data)."""
    summary = escape(summary)
    details = tuple(escape(line) for line in details)
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
    if not math.isfinite(seconds):
        return None  # nan, inf: the backoff decides
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A 3xx is an answer, not a place to go: it comes back as an HTTPError."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class _Deadline:
    """Bounds one attempt as a whole: when the time is up, the sockets of its connections
    are shut down, so a server that drips its answer cannot hold the post."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = threading.Event()
        self.connections: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def _expire(self) -> None:
        with self._lock:
            self.expired.set()
            for conn in self.connections:
                _shut(conn.sock)

    def watch(self, conn: http.client.HTTPConnection) -> None:
        """Bound ``conn`` (called once it is connected)."""
        with self._lock:
            self.connections.append(conn)
            if self.expired.is_set():
                _shut(conn.sock)

    def opener(self) -> urllib.request.OpenerDirector:
        """An opener whose connections this deadline bounds, following no redirect."""
        deadline = self

        def bounded(base: type[http.client.HTTPConnection]) -> Any:
            class Bounded(base):  # type: ignore[valid-type, misc]
                def connect(self) -> None:
                    super().connect()
                    deadline.watch(self)
            return Bounded

        plain, tls = bounded(http.client.HTTPConnection), bounded(http.client.HTTPSConnection)

        class Http(urllib.request.HTTPHandler):
            def http_open(self, req: Any) -> Any:
                return self.do_open(plain, req)

        class Https(urllib.request.HTTPSHandler):
            def https_open(self, req: Any) -> Any:
                return self.do_open(tls, req, context=self._context)  # type: ignore[attr-defined]

        return urllib.request.build_opener(Http, Https, _NoRedirect)

    def __enter__(self) -> _Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()


def _shut(sock: socket.socket | None) -> None:
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _post_once(target: WebhookSettings, url: str, data: bytes) -> tuple[int, str | None, str]:
    """One POST within ``timeout_seconds`` as a whole: the status, the Retry-After header
    and the start of the body. TimeoutError when the time ran out."""
    request = urllib.request.Request(url, data=data, method="POST", headers={
        "Content-Type": "application/json; charset=utf-8", "User-Agent": "reporter"})
    with _Deadline(target.timeout_seconds) as deadline:
        try:
            with deadline.opener().open(request, timeout=target.timeout_seconds) as response:
                return response.status, None, response.read(200).decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            try:
                text = exc.read(200).decode("utf-8", "replace")
            except OSError:
                text = ""
            finally:
                exc.close()
            return exc.code, exc.headers.get("Retry-After"), text
        except (OSError, http.client.HTTPException) as exc:
            if deadline.expired.is_set():
                raise TimeoutError from exc
            raise


def post(target: WebhookSettings, body: dict[str, Any], *,
         sleep: Callable[[float], None] = time.sleep) -> int:
    """Post ``body`` once it lands; the number of attempts it took. DeliveryError (naming the
    variable, never the URL) when it is refused for good or every retry failed."""
    if target.url is None:
        raise DeliveryError(f"{target.name}: environment variable {target.url_env} "
                            f"(webhook url_env) is not set")
    url = target.url
    problem = url_problem(url, target.allow_plaintext)
    if problem is not None:
        raise DeliveryError(f"{target.name}: environment variable {target.url_env} {problem}")
    data = json.dumps(body, ensure_ascii=False).encode("utf-8")
    attempts = 1 + max(0, target.retries)
    last = ""
    for attempt in range(1, attempts + 1):
        wait = target.retry_backoff_seconds * 2 ** (attempt - 1)
        try:
            status, retry_after, text = _post_once(target, url, data)
        except TimeoutError:
            last = f"no answer within {target.timeout_seconds:g} s"
        except http.client.InvalidURL:  # the client refused the URL: retrying cannot help
            raise DeliveryError(f"{target.name}: environment variable {target.url_env} "
                                f"does not hold a URL the client accepts") from None
        except (ConnectionError, http.client.HTTPException, urllib.error.URLError,
                OSError) as exc:
            reason = getattr(exc, "reason", None)
            if isinstance(reason, TimeoutError):
                last = f"no answer within {target.timeout_seconds:g} s"
            elif isinstance(reason, str):  # urllib's own words, which never hold the URL
                last = f"connection failed: {reason}"
            else:
                last = f"connection failed: {type(reason or exc).__name__}"
        except ValueError as exc:  # the client refused the URL itself: retrying cannot help
            raise DeliveryError(f"{target.name}: environment variable {target.url_env} "
                                f"does not hold a URL the client accepts "
                                f"({type(exc).__name__})") from None
        else:
            if 200 <= status < 300:
                return attempt
            snippet = " ".join(text.split())[:120]
            last = f"HTTP {status}" + (f" ({snippet})" if snippet else "")
            if 300 <= status < 400:
                raise DeliveryError(f"{target.name} answered {last}, a redirect, which is "
                                    f"not followed: set the variable to the final URL")
            if status == 429:
                after = _retry_after(retry_after)
                wait = wait if after is None else after
            elif status < 500:
                raise DeliveryError(f"{target.name} refused the post: {last}")
        if attempt < attempts:
            log.warning("%s: %s; trying again in %.1f s (attempt %d of %d)", target.name, last,
                        wait, attempt + 1, attempts)
            sleep(wait)
    raise DeliveryError(f"{target.name}: {last} after {attempts} attempts")
