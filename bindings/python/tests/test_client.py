"""The urllib clients against a loopback stand-in that checks what kasm-server checks: the login
cookie plus the CSRF header on writes, the bearer API key, the developer API's key in the body, and
errors mapped back to the exception classes."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator, Tuple

import pytest

import kasm

CSRF = "csrf-123"


class FakeServer(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def reply(self, status: int, body: Any, headers: Tuple[Tuple[str, str], ...] = ()) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(raw)

    def body(self) -> Any:
        n = int(self.headers.get("Content-Length", "0"))
        return json.loads(self.rfile.read(n)) if n else None

    def authenticated(self, write: bool) -> bool:
        if self.headers.get("Authorization") == "Bearer key1:secret1":
            return True
        if "kasm_auth=cookie-ok" in (self.headers.get("Cookie") or ""):
            return not write or self.headers.get("X-CSRF-Token") == CSRF
        return False

    def do_GET(self) -> None:
        if not self.authenticated(write=False):
            return self.reply(401, {"error_message": "log in first", "code": "unauthenticated"})
        if self.path.startswith("/api/v1/sessions/missing"):
            return self.reply(404, {"error_message": "session 'missing' does not exist", "code": "not_found"})
        if self.path.startswith("/api/v1/workspaces"):
            if "after=p2" in self.path:
                return self.reply(200, {"items": [{"id": "w2"}], "total": 2, "next": None})
            return self.reply(200, {"items": [{"id": "w1"}], "total": 2, "next": "p2"})
        if self.path.startswith("/api/v1/sessions/s1"):
            return self.reply(200, {"id": "s1", "state": "running"})
        self.reply(404, {"error_message": "no route"})

    def do_POST(self) -> None:
        body = self.body()
        if self.path == "/api/v1/auth/login":
            if body == {"username": "admin", "password": "pw"}:
                return self.reply(200, {"username": "admin", "csrf_token": CSRF},
                                  (("Set-Cookie", "kasm_auth=cookie-ok; Path=/; HttpOnly"),))
            return self.reply(401, {"error_message": "wrong user name or password", "code": "unauthenticated"})
        if self.path.startswith("/api/public/"):
            if body.get("api_key") != "key1" or body.get("api_key_secret") != "secret1":
                return self.reply(401, {"error_message": "bad key"})
            if self.path.endswith("/request_kasm"):
                return self.reply(200, {"kasm_id": "s1", "image_id": body["image_id"], "kasm_url": "/desktop/s1/"})
            return self.reply(400, {"error_message": "unknown verb"})
        if not self.authenticated(write=True):
            return self.reply(403, {"error_message": "missing CSRF token", "code": "permission_denied"})
        if self.path == "/api/v1/sessions":
            if body.get("workspace_id") == "full":
                return self.reply(429, {"error_message": "licence limit reached", "code": "resource_exhausted"})
            return self.reply(201, {"id": "s1", "state": "running", "workspace_id": body["workspace_id"]})
        self.reply(404, {"error_message": "no route"})


@pytest.fixture
def base_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeServer)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_login_keeps_cookie_and_sends_csrf_on_writes(base_url: str) -> None:
    c = kasm.RestClient(base_url)
    with pytest.raises(kasm.Unauthenticated):
        c.list_workspaces()
    with pytest.raises(kasm.Unauthenticated, match="wrong user name"):
        c.login("admin", "nope")
    assert c.login("admin", "pw")["csrf_token"] == CSRF
    assert [w["id"] for w in c.list_workspaces()] == ["w1", "w2"]  # Follows the next cursor.
    assert c.launch_session("web")["state"] == "running"
    assert c.wait_for_session("s1", timeout=1)["id"] == "s1"


def test_api_key_bearer_and_error_classes(base_url: str) -> None:
    c = kasm.RestClient(base_url, api_key="key1", api_key_secret="secret1")
    assert c.launch_session("web")["workspace_id"] == "web"
    with pytest.raises(kasm.ResourceExhausted, match="licence limit"):
        c.launch_session("full")
    with pytest.raises(kasm.NotFound):
        c.get_session("missing")


def test_developer_api_puts_the_key_in_the_body(base_url: str) -> None:
    d = kasm.DeveloperApiClient(base_url, "key1", "secret1")
    assert d.request_kasm("web", user_id="alice")["kasm_id"] == "s1"
    with pytest.raises(kasm.Unauthenticated):
        kasm.DeveloperApiClient(base_url, "key1", "wrong").get_kasms()
    with pytest.raises(kasm.InvalidArgument, match="unknown verb"):
        d.call("no_such_verb")


def test_unreachable_server_is_unavailable() -> None:
    with pytest.raises(kasm.Unavailable):
        kasm.RestClient("http://127.0.0.1:1", timeout=2).list_workspaces()
    with pytest.raises(TypeError):
        kasm.RestClient("127.0.0.1:8443")
