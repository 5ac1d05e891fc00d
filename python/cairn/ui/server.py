"""The `cairn ui` HTTP server: the standard library's threading server, the
JSON API of api.py, the static single-page app, and cards served sandboxed."""

from __future__ import annotations

import json
import mimetypes
import re
import sys
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any, Callable
from urllib.parse import parse_qs, unquote, urlsplit

from ..errors import CairnError, NotFoundError
from .api import BadRequest, UIData

# The UI's own pages: scripts and styles from this server only, no network.
UI_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
          "frame-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'")
# A card is served as a sandbox of its own (an opaque origin): its scripts
# run, but cannot read the UI's pages, cookies or API, nor fetch anything.
CARD_CSP = ("sandbox allow-scripts; default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
            "script-src 'unsafe-inline'; font-src data:")
STATIC = ("index.html", "app.js", "app.css")

Route = tuple["re.Pattern[str]", Callable[..., Any], str]


def _pick(query: dict[str, str], *keys: str) -> dict[str, str]:
    return {k: v for k, v in query.items() if k in keys}


def _routes(data: UIData) -> list[Route]:
    seg = r"([^/]+)"
    num = r"(\d+)"
    return [
        (re.compile(r"^/api/runs$"),
         lambda q: data.runs(**_pick(q, "flow", "status", "tag", "user", "offset", "limit")), "json"),
        (re.compile(rf"^/api/runs/{seg}/{num}$"), lambda q, f, r: data.run(f, r), "json"),
        (re.compile(rf"^/api/runs/{seg}/{num}/steps/{seg}/tasks$"),
         lambda q, f, r, s: data.step_tasks(f, r, s, **_pick(q, "sort", "order", "status", "offset", "limit")),
         "json"),
        (re.compile(rf"^/api/runs/{seg}/{num}/tasks/{num}$"), lambda q, f, r, t: data.task(f, r, t), "json"),
        (re.compile(rf"^/api/runs/{seg}/{num}/tasks/{num}/log$"),
         lambda q, f, r, t: data.log(f, r, t, **_pick(q, "stream", "attempt", "offset")), "json"),
        (re.compile(rf"^/api/runs/{seg}/{num}/tasks/{num}/artifacts/{seg}$"),
         lambda q, f, r, t, n: data.artifact_preview(f, r, t, n), "html"),
        (re.compile(rf"^/card/{seg}/{num}/{num}/{num}$"), lambda q, f, r, t, i: data.card(f, r, t, i), "html"),
        (re.compile(rf"^/card/{seg}/{num}/{num}/live/{num}/{num}$"),
         lambda q, f, r, t, a, i: data.live_card(f, r, t, a, i), "html"),
    ]




class Handler(BaseHTTPRequestHandler):
    server: UIServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status: int, message: str) -> None:
        self._send(status, json.dumps({"error": message}).encode(), "application/json")

    def _host_ok(self) -> bool:
        """Bound to loopback, answer only requests addressed to it (DNS rebinding)."""
        if not self.server.loopback:
            return True
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0].strip("[]")
        return host in ("127.0.0.1", "localhost", "::1")

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        if not self._host_ok():
            self._error(HTTPStatus.FORBIDDEN, "unexpected Host header")
            return
        url = urlsplit(self.path)
        path = url.path
        if path == "/" or path in (f"/static/{n}" for n in STATIC):
            self._static("index.html" if path == "/" else path.rsplit("/", 1)[1])
            return
        if path == "/favicon.ico":
            self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon")
            return
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        for pattern, handler, kind in self.server.routes:
            m = pattern.match(path)
            if m:
                self._answer(handler, kind, query, [unquote(g) for g in m.groups()])
                return
        self._error(HTTPStatus.NOT_FOUND, f"no such page: {path}")

    def _answer(self, handler: Callable[..., Any], kind: str, query: dict[str, str], args: list[str]) -> None:
        try:
            result = handler(query, *args)
        except NotFoundError as e:
            self._error(HTTPStatus.NOT_FOUND, str(e))
            return
        except BadRequest as e:
            self._error(HTTPStatus.BAD_REQUEST, str(e))
            return
        except CairnError as e:
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, str(e))
            return
        if kind == "json":
            self._send(HTTPStatus.OK, json.dumps(result).encode(), "application/json")
        else:  # a card or a preview: sandboxed should anyone open it as a page
            self._send(HTTPStatus.OK, result.encode(), "text/html; charset=utf-8",
                       {"Content-Security-Policy": CARD_CSP})

    def _static(self, name: str) -> None:
        body = resources.files("cairn.ui").joinpath("static", name).read_bytes()
        ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if ctype.startswith("text/") or ctype.endswith("javascript"):
            ctype += "; charset=utf-8"
        self._send(HTTPStatus.OK, body, ctype, {"Content-Security-Policy": UI_CSP,
                                                "X-Frame-Options": "DENY"})


class UIServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, data: UIData, host: str = "127.0.0.1", port: int = 0, verbose: bool = False):
        super().__init__((host, port), Handler)
        self.data = data
        self.routes = _routes(data)
        self.verbose = verbose
        self.loopback = host in ("127.0.0.1", "localhost", "::1")

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{'127.0.0.1' if host == '0.0.0.0' else host}:{port}/"


def serve(root: str, host: str = "127.0.0.1", port: int = 8324, open_browser: bool = True,
          verbose: bool = False) -> None:
    server = UIServer(UIData(root), host, port, verbose)
    print(f"cairn ui: serving {root} at {server.url} (Ctrl-C to stop)", flush=True)
    if open_browser:
        import webbrowser

        webbrowser.open(server.url)
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        server.server_close()
        sys.stdout.flush()


