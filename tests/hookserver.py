"""A real incoming-webhook server on loopback with scripted faults, for webhook tests."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: faults a script may hold, one per request, in order; "ok" (or an empty script) answers 200;
#: "301".."308" redirect to ``/elsewhere`` (which answers a GET with 200); "drip" answers
#: 200 one byte every 0.2 s
FAULTS = ("ok", "429", "500", "400", "timeout", "drop", "301", "302", "303", "307", "308",
          "drip")
REDIRECTS = {"301": 301, "302": 302, "303": 303, "307": 307, "308": 308}


class HookServer:
    """Answers POSTs by the script; ``posts`` holds each body it accepted (answered 200)."""

    def __init__(self) -> None:
        self.script: list[str] = []
        self.posts: list[dict[str, Any]] = []
        self.attempts = 0
        #: the paths of the GET requests it answered (a client that followed a redirect)
        self.gets: list[str] = []
        self.retry_after = "1"
        self.lock = threading.Lock()
        #: set when a request arrives: a "timeout" answer holds until the client retries
        self.arrived = threading.Event()
        #: set at shutdown: a dripping answer stops
        self.stop = threading.Event()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The server's URL."""
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/hooks/secret-token"

    def _next(self) -> str:
        with self.lock:
            self.attempts += 1
            return self.script.pop(0) if self.script else "ok"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                server.gets.append(self.path)
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def drip(self) -> None:
                answer = b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n" + b"o" * 40
                for i in range(len(answer)):
                    if server.stop.wait(0.2):
                        return
                    try:
                        self.wfile.write(answer[i:i + 1])
                        self.wfile.flush()
                    except OSError:
                        return
                self.close_connection = True

            def do_POST(self) -> None:
                server.arrived.set()
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                fault = server._next()
                if fault == "timeout":
                    server.arrived.clear()
                    server.arrived.wait(30)  # until the client gives up and tries again
                    self.close_connection = True
                    return
                if fault == "drop":
                    self.close_connection = True
                    self.connection.close()
                    return
                if fault == "drip":
                    self.drip()
                    return
                if fault in REDIRECTS:
                    self.send_response(REDIRECTS[fault])
                    self.send_header("Location", "/elsewhere")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status = {"ok": 200, "429": 429, "500": 500, "400": 400}[fault]
                if status == 200:  # recorded before the answer: the client may return at once
                    with server.lock:
                        server.posts.append(json.loads(body))
                self.send_response(status)
                if status == 429:
                    self.send_header("Retry-After", server.retry_after)
                payload = b"ok" if status == 200 else b"no"
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        return Handler


@contextmanager
def hook_server() -> Iterator[HookServer]:
    """A running server, shut down after the block."""
    server = HookServer()
    server.thread.start()
    try:
        yield server
    finally:
        server.arrived.set()
        server.stop.set()
        server.httpd.shutdown()
        server.httpd.server_close()
        server.thread.join()
