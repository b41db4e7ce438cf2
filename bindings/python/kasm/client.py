"""HTTP clients for a running kasm-server, with the standard library only (urllib).

:class:`RestClient` speaks the REST API (``/api/v1``, docs/http-api.md): log in with a user name
and password (cookie plus CSRF token, like the web application) or use an API key as a bearer
token. :class:`DeveloperApiClient` speaks Kasm's developer API (``POST /api/public/<verb>`` with the
key in the body), so code written for Kasm Workspaces works against kasm-server.

Errors come back as the same exception classes the bindings raise (``NotFound``,
``Unauthenticated``, ...), chosen by the ``code`` of the error body, else by the HTTP status.
"""

from __future__ import annotations

import http.cookiejar
import json
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Dict, List, Mapping, Optional

from .errors import DeadlineExceeded, KasmError, error_for_code

__all__ = ["RestClient", "DeveloperApiClient", "HttpError"]

_CODE_BY_STATUS = {
    400: "invalid_argument",
    401: "unauthenticated",
    403: "permission_denied",
    404: "not_found",
    409: "failed_precondition",
    429: "resource_exhausted",
    503: "unavailable",
    504: "deadline_exceeded",
}


class HttpError(KasmError):
    """Raised only for answers that carry no kasm error code and no status kasm maps (e.g. a 502
    from a proxy in front of the server). ``status`` is the HTTP status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message, code="unavailable" if status >= 500 else "internal")
        self.status = status


def _error_from_response(status: int, body: bytes) -> KasmError:
    message = body.decode("utf-8", "replace")[:500]
    code = None
    try:
        doc = json.loads(body)
        if isinstance(doc, dict):
            message = str(doc.get("error_message") or doc.get("message") or message)
            code = doc.get("code")
    except ValueError:
        pass
    code = code or _CODE_BY_STATUS.get(status)
    if code is None:
        return HttpError(f"HTTP {status}: {message}", status)
    err = error_for_code(code, message)
    err.http_status_code = status  # type: ignore[attr-defined]
    return err


class _Http:
    """One urllib opener with a cookie jar and the TLS settings of a client."""

    def __init__(self, base_url: str, verify_tls: bool, timeout: float) -> None:
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise TypeError("base_url must be a str starting with http:// or https://")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        context = ssl.create_default_context()
        if not verify_tls:  # kasm-server's self-signed certificate on a test machine.
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.cookies), urllib.request.HTTPSHandler(context=context)
        )

    def send(self, method: str, path: str, body: Any = None, headers: Optional[Mapping[str, str]] = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with self.opener.open(req, timeout=self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as e:
            raise _error_from_response(e.code, e.read()) from None
        except urllib.error.URLError as e:
            raise error_for_code("unavailable", f"{self.base_url}: {e.reason}") from None
        if not raw:
            return None
        return json.loads(raw)


class RestClient:
    """The REST API (``/api/v1``). Authenticate with :meth:`login` or ``api_key``/``api_key_secret``."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: Optional[str] = None,
        api_key_secret: Optional[str] = None,
        verify_tls: bool = True,
        timeout: float = 60.0,
    ) -> None:
        self._http = _Http(base_url, verify_tls, timeout)
        self._csrf: Optional[str] = None
        self._bearer: Optional[str] = None
        if api_key is not None or api_key_secret is not None:
            if not isinstance(api_key, str) or not isinstance(api_key_secret, str):
                raise TypeError("api_key and api_key_secret must both be str")
            self._bearer = f"{api_key}:{api_key_secret}"

    # ---- plumbing ----
    def request(self, method: str, path: str, body: Any = None, query: Optional[Mapping[str, Any]] = None) -> Any:
        """Any call: ``method`` ("GET", "POST", ...), ``path`` under /api/v1 ("/sessions")."""
        if query:
            path += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        headers: Dict[str, str] = {}
        if self._bearer:
            headers["Authorization"] = "Bearer " + self._bearer
        if self._csrf and method != "GET":
            headers["X-CSRF-Token"] = self._csrf
        return self._http.send(method, "/api/v1" + path, body, headers)

    @property
    def base_url(self) -> str:
        return self._http.base_url

    # ---- authentication ----
    def login(self, username: str, password: str) -> Dict[str, Any]:
        """Logs in like the web application: keeps the ``kasm_auth`` cookie and the CSRF token."""
        me = self.request("POST", "/auth/login", {"username": username, "password": password})
        self._csrf = me.get("csrf_token")
        return me

    def me(self) -> Dict[str, Any]:
        me = self.request("GET", "/auth/me")
        if isinstance(me, dict) and me.get("csrf_token"):
            self._csrf = me["csrf_token"]
        return me

    def logout(self) -> None:
        self.request("POST", "/auth/logout")
        self._csrf = None
        self._http.cookies.clear()

    # ---- resources ----
    def openapi(self) -> Dict[str, Any]:
        return self._http.send("GET", "/api/openapi.json")

    def list(self, collection: str, **filters: Any) -> List[Dict[str, Any]]:
        """Every item of a collection ("workspaces", "sessions", ...), following the ``next`` cursor."""
        items: List[Dict[str, Any]] = []
        query: Dict[str, Any] = dict(filters)
        while True:
            page = self.request("GET", "/" + collection, query=query)
            items.extend(page.get("items", []))
            if not page.get("next"):
                return items
            query["after"] = page["next"]

    def list_workspaces(self) -> List[Dict[str, Any]]:
        return self.list("workspaces")

    def list_sessions(self, **filters: Any) -> List[Dict[str, Any]]:
        return self.list("sessions", **filters)

    def launch_session(self, workspace_id: str, **fields: Any) -> Dict[str, Any]:
        """Starts a session; it may still be starting (poll with :meth:`wait_for_session`)."""
        return self.request("POST", "/sessions", {"workspace_id": workspace_id, **fields})

    def get_session(self, session_id: str) -> Dict[str, Any]:
        return self.request("GET", "/sessions/" + urllib.parse.quote(session_id, safe=""))

    def keepalive(self, session_id: str) -> Dict[str, Any]:
        return self.request("POST", f"/sessions/{urllib.parse.quote(session_id, safe='')}/keepalive")

    def delete_session(self, session_id: str) -> Any:
        return self.request("DELETE", "/sessions/" + urllib.parse.quote(session_id, safe=""))

    def wait_for_session(self, session_id: str, *, timeout: float = 120.0, poll: float = 0.5) -> Dict[str, Any]:
        """Polls until the session runs; DeadlineExceeded on timeout or when it failed."""
        deadline = time.monotonic() + timeout
        while True:
            s = self.get_session(session_id)
            if s.get("state") == "running":
                return s
            if s.get("state") in ("failed", "destroyed"):
                raise DeadlineExceeded(f"session {session_id} ended {s.get('state')}: {s.get('state_reason', '')}")
            if time.monotonic() >= deadline:
                raise DeadlineExceeded(f"session {session_id} still {s.get('state')} after {timeout} s")
            time.sleep(poll)


class DeveloperApiClient:
    """Kasm's developer API: ``POST /api/public/<verb>`` with ``api_key`` and ``api_key_secret``."""

    def __init__(
        self, base_url: str, api_key: str, api_key_secret: str, *, verify_tls: bool = True, timeout: float = 120.0
    ) -> None:
        if not isinstance(api_key, str) or not isinstance(api_key_secret, str):
            raise TypeError("api_key and api_key_secret must both be str")
        self._http = _Http(base_url, verify_tls, timeout)
        self._key = api_key
        self._secret = api_key_secret

    def call(self, verb: str, **fields: Any) -> Dict[str, Any]:
        """Calls one verb with the given body fields and returns the answer."""
        if not isinstance(verb, str) or not verb.replace("_", "").isalnum():
            raise TypeError("verb must be a str such as 'request_kasm'")
        body = {"api_key": self._key, "api_key_secret": self._secret, **fields}
        return self._http.send("POST", "/api/public/" + verb, body) or {}

    def request_kasm(self, image_id: str, user_id: Optional[str] = None, **fields: Any) -> Dict[str, Any]:
        if user_id is not None:
            fields["user_id"] = user_id
        return self.call("request_kasm", image_id=image_id, **fields)

    def get_kasm_status(self, kasm_id: str, user_id: Optional[str] = None) -> Dict[str, Any]:
        return self.call("get_kasm_status", kasm_id=kasm_id, **({"user_id": user_id} if user_id else {}))

    def destroy_kasm(self, kasm_id: str, user_id: Optional[str] = None) -> Dict[str, Any]:
        return self.call("destroy_kasm", kasm_id=kasm_id, **({"user_id": user_id} if user_id else {}))

    def keepalive(self, kasm_id: str) -> Dict[str, Any]:
        return self.call("keepalive", kasm_id=kasm_id)

    def get_kasms(self) -> Dict[str, Any]:
        return self.call("get_kasms")

    def get_images(self) -> Dict[str, Any]:
        return self.call("get_images")

    def get_users(self) -> Dict[str, Any]:
        return self.call("get_users")
