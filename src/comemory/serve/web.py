"""The page of ``comemory serve`` and the small JSON API behind it, on the standard
library's threading HTTP server (no framework, no front-end build).

    GET  /                                 the page (page.html)
    GET  /api/status                       every camera: status, frames/s, lag, curve
    GET  /api/cameras/<name>/live.jpg      the last scored frame with its score map
    GET  /api/events?camera=&since=&until=&reviewed=yes|no&limit=
    GET  /api/events/<id>                  one event
    GET  /api/events/<id>/thumbnail.jpg
    GET  /api/events/<id>/clip.webm        (byte ranges, so the browser can seek)
    POST /api/events/<id>/review           {"verdict": "true_anomaly"|"false_alarm",
                                            "note": "..."}
    GET  /api/reviews.csv

Safety: files are reached only through an event's id, looked up in the database; no part
of a request becomes a path. With a token (required off loopback), every request must
carry it, as ``Authorization: Bearer`` or the cookie that ``/?token=...`` sets (then the
page reloads without it in the address); the log shows paths without query strings, so
the token never reaches it.
"""
from __future__ import annotations

import hmac
import html
import json
import logging
import math
import re
import threading
import time
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import cv2

from comemory.serve.database import MAX_NOTE, VERDICTS, EventFilter

if TYPE_CHECKING:
    from comemory.serve.service import Service

log = logging.getLogger("comemory.serve.web")

COOKIE = "comemory_token"
TOKEN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>comemory: token</title>
<style>body{{font-family:sans-serif;margin:4em auto;max-width:28em}}
input{{font-size:1em;padding:.3em;width:20em}}</style></head>
<body><h1>comemory</h1><p>{message}</p>
<form method="get" action="/"><label>Token <input name="token" type="password"
autocomplete="current-password" autofocus required></label> <button>Open</button></form>
<p>It is in the file given as <code>token_file</code>, or in
<code>COMEMORY_TOKEN</code>, where the service was started.</p></body></html>
"""
MAX_BODY = 8192
EVENT_FILE = re.compile(r"^/api/events/(\d{1,12})/(thumbnail\.jpg|clip\.webm)$")
EVENT = re.compile(r"^/api/events/(\d{1,12})$")
REVIEW = re.compile(r"^/api/events/(\d{1,12})/review$")
LIVE = re.compile(r"^/api/cameras/([A-Za-z0-9_-]{1,64})/live\.jpg$")
RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class WebServer:
    """The page's server on ``config.host:config.port`` in a thread of its own."""

    def __init__(self, service: Service):
        self.service = service
        handler = type("Handler", (Handler,), {"service": service})
        self.server = ThreadingHTTPServer((service.config.host, service.config.port), handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, name="web",
                                        daemon=True)

    @property
    def address(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        self._thread.start()
        log.info("page at %s", self.address)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class BadRequest(Exception):
    """A request the API refuses; the message goes back to the browser."""


class Handler(BaseHTTPRequestHandler):
    service: Service
    server_version = "comemory"
    sys_version = ""

    def log_message(self, format: str, *args) -> None:
        # the request line can hold ?token=...: log the method and path only
        request = getattr(self, "command", "-"), urlsplit(getattr(self, "path", "")).path
        log.info("%s %s %s", self.address_string(), *request)

    def do_GET(self) -> None:  # the base class's name
        self._dispatch(self._get)

    def do_POST(self) -> None:
        self._dispatch(self._post)

    def _dispatch(self, handler) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query, max_num_fields=20)
        try:
            if url.path == "/" and "token" in query and self.service.token is not None:
                return self._login(query["token"][0])
            if not self._authorised():
                if url.path == "/":  # a person at a browser: ask for it
                    return self._token_page("This page needs the token the service was "
                                            "started with.")
                return self._send_json({"error": "a token is needed"}, HTTPStatus.UNAUTHORIZED)
            handler(url.path, query)
        except BadRequest as error:
            self._send_json({"error": str(error)}, HTTPStatus.BAD_REQUEST)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _get(self, path: str, query: dict) -> None:
        if path == "/":
            page = resources.files("comemory.serve").joinpath("page.html").read_bytes()
            return self._send(page, "text/html; charset=utf-8")
        if path == "/api/status":
            return self._send_json({"now": time.time(),
                                    "cameras": [c.status() for c in self.service.cameras]})
        if path == "/api/events":
            return self._send_json({"events": self.service.store.events(_filter(
                query, [c.name for c in self.service.cameras]))})
        if path == "/api/reviews.csv":
            return self._send(self.service.store.reviews_csv().encode(), "text/csv",
                              {"Content-Disposition": 'attachment; filename="reviews.csv"'})
        if match := LIVE.match(path):
            return self._live(match.group(1))
        if match := EVENT.match(path):
            event = self.service.store.event(int(match.group(1)))
            return self._send_json(event) if event else self._not_found()
        if match := EVENT_FILE.match(path):
            return self._event_file(int(match.group(1)), match.group(2))
        self._not_found()

    def _post(self, path: str, query: dict) -> None:
        match = REVIEW.match(path)
        if not match:
            return self._not_found()
        verdict, note = _review(self._json_body())
        if not self.service.store.review(int(match.group(1)), verdict, note, time.time()):
            return self._not_found()
        self._send_json(self.service.store.event(int(match.group(1))))

    def _live(self, name: str) -> None:
        camera = self.service.camera(name)
        picture = camera.picture() if camera else None
        if picture is None:
            return self._not_found()
        ok, data = cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, 80])
        if not ok:
            return self._not_found()
        self._send(data.tobytes(), "image/jpeg", {"Cache-Control": "no-store"})

    def _event_file(self, event_id: int, kind: str) -> None:
        event = self.service.store.event(event_id)
        column, folder, mime = (("thumbnail", "thumbnails", "image/jpeg")
                                if kind == "thumbnail.jpg" else ("clip", "clips", "video/webm"))
        if event is None or not event[column]:
            return self._not_found()
        root = (self.service.media / folder).resolve()
        path = (root / event[column]).resolve()
        if path.parent != root or not path.is_file():  # the name comes from the database
            return self._not_found()
        self._send_file(path, mime)

    def _send_file(self, path: Path, mime: str) -> None:
        size = path.stat().st_size
        start, end = 0, size - 1
        status = HTTPStatus.OK
        if match := RANGE.match(self.headers.get("Range", "")):
            first, last = match.groups()
            if first:
                start, end = int(first), min(int(last), size - 1) if last else size - 1
            elif last:
                start = max(0, size - int(last))
            if start > end or start >= size:
                self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
                self.send_header("Content-Range", f"bytes */{size}")
                self.end_headers()
                return
            status = HTTPStatus.PARTIAL_CONTENT
        with path.open("rb") as handle:
            handle.seek(start)
            data = handle.read(end - start + 1)
        headers = {"Accept-Ranges": "bytes"}
        if status == HTTPStatus.PARTIAL_CONTENT:
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        self._send(data, mime, headers, status)

    def _login(self, token: str) -> None:
        if not hmac.compare_digest(token.encode(), self.service.token.encode()):
            return self._token_page("That token is not this service's. Try again.")
        self.send_response(HTTPStatus.SEE_OTHER)
        self.send_header("Location", "/")
        self.send_header("Set-Cookie", f"{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _token_page(self, message: str) -> None:
        """401 with a form that asks for the token (sent as /?token=..., which sets the
        cookie and leaves the address)."""
        self._send(TOKEN_PAGE.format(message=html.escape(message)).encode(),
                   "text/html; charset=utf-8", status=HTTPStatus.UNAUTHORIZED)

    def _authorised(self) -> bool:
        token = self.service.token
        if token is None:
            return True
        given = ""
        header = self.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            given = header[len("Bearer "):]
        elif cookie := self.headers.get("Cookie"):
            jar = SimpleCookie()
            try:
                jar.load(cookie)
            except CookieError:
                return False
            given = jar[COOKIE].value if COOKIE in jar else ""
        return hmac.compare_digest(given.encode(), token.encode())

    def _json_body(self) -> dict:
        if self.headers.get("Content-Type", "").split(";")[0].strip() != "application/json":
            raise BadRequest("send the review as application/json")
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            raise BadRequest("bad Content-Length") from None
        if not 0 < length <= MAX_BODY:
            raise BadRequest(f"the body must hold 1 to {MAX_BODY} bytes")
        try:
            body = json.loads(self.rfile.read(length))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise BadRequest("the body is not valid JSON") from None
        if not isinstance(body, dict):
            raise BadRequest("the body must be a JSON object")
        return body

    def _not_found(self) -> None:
        self._send_json({"error": "not found"}, HTTPStatus.NOT_FOUND)

    def _send_json(self, data, status: HTTPStatus = HTTPStatus.OK) -> None:
        self._send(json.dumps(data).encode(), "application/json", status=status)

    def _send(self, data: bytes, mime: str, headers: dict | None = None,
              status: HTTPStatus = HTTPStatus.OK) -> None:
        self.send_response(status)
        self.send_header("Content-Type", mime)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Content-Type-Options", "nosniff")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


def _review(body: dict) -> tuple[str, str]:
    verdict, note = body.get("verdict"), body.get("note", "")
    if verdict not in VERDICTS:
        raise BadRequest(f"verdict must be one of {list(VERDICTS)}")
    if not isinstance(note, str) or len(note) > MAX_NOTE:
        raise BadRequest(f"note must be text of at most {MAX_NOTE} characters")
    return verdict, note.strip()


def _filter(query: dict, cameras: list[str]) -> EventFilter:
    """The event list's filters from the query string, each checked."""
    def one(key: str) -> str | None:
        values = query.get(key)
        return values[0] if values and values[0] != "" else None

    camera = one("camera")
    if camera is not None and camera not in cameras:
        raise BadRequest(f"no camera named {camera!r}")
    reviewed = one("reviewed")
    if reviewed not in (None, "yes", "no"):
        raise BadRequest("reviewed must be yes or no")
    try:
        since = None if one("since") is None else float(one("since"))
        until = None if one("until") is None else float(one("until"))
        limit = int(one("limit") or 200)
    except ValueError:
        raise BadRequest("since and until are seconds since the epoch, limit a whole "
                         "number") from None
    if any(t is not None and not math.isfinite(t) for t in (since, until)):
        raise BadRequest("since and until must be finite numbers")
    if not 1 <= limit <= 1000:
        raise BadRequest("limit must lie between 1 and 1000")
    return EventFilter(camera, since, until, None if reviewed is None else reviewed == "yes",
                       limit)
