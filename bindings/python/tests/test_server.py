"""The Python clients against the real kasm-server (a process on a free loopback port, SQLite in a
temporary directory, no Docker agent): REST login with cookie and CSRF, API keys, the developer
API, and the server's errors arriving as the right exception classes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
import time
from typing import Iterator, Tuple

import pytest

import kasm

PASSWORD = "py-admin-password"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server() -> Iterator[Tuple[str, str, str]]:
    binary = os.environ.get("KASM_SERVER_BINARY", "")
    if not binary or not os.access(binary, os.X_OK):
        if os.environ.get("KASM_REQUIRE_SERVICES") == "1":
            pytest.fail("KASM_SERVER_BINARY is not set to the kasm-server binary")
        pytest.skip("KASM_SERVER_BINARY is not set")
    with tempfile.TemporaryDirectory(prefix="kasm-py-server-") as data:
        key = subprocess.run([binary, "api-key", "create", "--name", "pytest", "--data-dir", data],
                             check=True, capture_output=True, text=True, timeout=60)
        creds = json.loads(key.stdout.strip().splitlines()[-1])
        port = _free_port()
        env = dict(os.environ, KASM_ADMIN_PASSWORD=PASSWORD)
        proc = subprocess.Popen([binary, "--http", "--port", str(port), "--data-dir", data, "--no-local-agent"],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=1):
                        break
                except OSError:
                    time.sleep(0.1)
            else:
                pytest.fail("kasm-server did not start within 30 s")
            yield base, creds["api_key"], creds["api_key_secret"]
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def test_rest_login_lists_the_builtin_workspaces_and_writes_with_csrf(server: Tuple[str, str, str]) -> None:
    base, _, _ = server
    client = kasm.RestClient(base)
    me = client.login("admin@kasm.local", PASSWORD)
    assert "admin" in me["permissions"]
    names = {w["id"] for w in client.list_workspaces()}
    assert {"desktop", "firefox", "desktop-deluxe"} <= names
    zone = client.request("POST", "/zones", {"name": "py-zone"})
    assert zone["name"] == "py-zone"
    assert client.openapi()["openapi"] == "3.1.0"
    client.logout()
    with pytest.raises(kasm.Unauthenticated):
        client.me()


def test_wrong_password_and_unknown_ids_map_to_exception_classes(server: Tuple[str, str, str]) -> None:
    base, key, secret = server
    with pytest.raises(kasm.Unauthenticated):
        kasm.RestClient(base).login("admin@kasm.local", "not-the-password")
    client = kasm.RestClient(base, api_key=key, api_key_secret=secret)
    with pytest.raises(kasm.NotFound):
        client.get_session("no-such-session")
    with pytest.raises(kasm.InvalidArgument):
        client.request("POST", "/workspaces", {"friendly_name": 5})


def test_developer_api_with_an_operator_key(server: Tuple[str, str, str]) -> None:
    base, key, secret = server
    dev = kasm.DeveloperApiClient(base, key, secret)
    images = dev.get_images()
    assert any(i.get("image_id") == "desktop" or i.get("friendly_name") == "Desktop" for i in images["images"])
    with pytest.raises(kasm.Unauthenticated):
        kasm.DeveloperApiClient(base, key, "wrong-secret").get_images()
