"""Shared fixtures. Tests import the package as users do: `import kasm` from PYTHONPATH (ctest
points it at <build>/bindings/python)."""

from __future__ import annotations

import os
import socket
from typing import Iterator

import pytest

import kasm


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "docker: needs dockerd and KASM_TEST_IMAGE")


def services_required() -> bool:
    return os.environ.get("KASM_REQUIRE_SERVICES", "0") == "1"


def skip_or_fail(reason: str) -> None:
    """Skips a test whose service is missing, or fails it when KASM_REQUIRE_SERVICES=1 (CI)."""
    if services_required():
        pytest.fail(reason + " (KASM_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


@pytest.fixture
def store() -> Iterator[kasm.Store]:
    s = kasm.open_store("memory")
    yield s
    s.close()


@pytest.fixture
def manager(store: kasm.Store) -> Iterator[kasm.Manager]:
    m = kasm.Manager(store, now_ms=1_700_000_000_000)
    m.upsert_zone({"id": "local", "name": "Local"})
    yield m
    m.close()


@pytest.fixture
def docker_image() -> str:
    image = os.environ.get("KASM_TEST_IMAGE", "")
    if not image:
        skip_or_fail("KASM_TEST_IMAGE is not set (scripts/test.sh builds kasm-test/busybox:1)")
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if host.startswith("unix://"):
        path = host[len("unix://") :]
        try:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.connect(path)
        except OSError as e:
            skip_or_fail(f"dockerd is not reachable at {path}: {e}")
    return image
